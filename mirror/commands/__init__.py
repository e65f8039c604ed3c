"""One module per command family: arguments in, one use case called, results printed.

`mirror.cli.main` imports a module here only when its command runs (see
`mirror.cli.parser`), so each module may import what its command needs.
"""
