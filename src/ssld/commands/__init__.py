"""One module per ``ssld`` subcommand. Each defines ``HELP`` (one line), ``EXAMPLES``, ``add_arguments(parser)``
and ``run(args) -> int``; heavy imports (torch, timm) happen inside ``run`` so ``ssld --help`` stays fast."""

# subcommand name -> module under ssld.commands, in the order `ssld --help` lists them
COMMANDS: dict[str, str] = {
    "data": "data",
    "check": "check",
    "train": "train",
    "eval": "evaluate",
    "dedup": "dedup",
    "label": "label",
    "select": "select",
    "init": "init",
    "pipeline": "pipeline",
    "report": "report",
    "ablate": "ablate",
    "export": "export",
    "predict": "predict",
    "transfer": "transfer",
    "convert": "convert",
}
