"""`tfreview sandbox`: the local AWS for demos and tests."""
from __future__ import annotations

from typing import Optional

import typer

from tfreview.cli.app import _bad, app


# -- sandbox ----------------------------------------------------------------------------------------------------
@app.command()
def sandbox(port: int = typer.Option(5000, "--port", min=0, max=65535, help="Loopback port for the local AWS."),
            step: Optional[float] = typer.Option(None, "--step", min=0.0, help="Seconds per ECS deployment step."),
            faults: Optional[str] = typer.Option(None, "--faults", help="service=fault,... to inject.")) -> None:
    """Run the local AWS (moto + the ECS deployment lifecycle) on 127.0.0.1 until Ctrl-C."""
    try:
        from tfreview.sandbox import parse_faults, run_sandbox
    except ImportError as exc:
        raise _bad(f"the sandbox needs moto ({exc.name} is missing)", "pip install 'tfreview[sandbox]'") from None
    run_sandbox(port=port, step_s=step, faults=parse_faults(faults) if faults else None)
