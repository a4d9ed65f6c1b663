"""One module per `boxflow` subcommand: `add_to(commands)` declares its arguments, `run(args, extra)` runs it.

`extra` holds the arguments argparse did not know; only `prepare` accepts any (Beam pipeline options).
"""
