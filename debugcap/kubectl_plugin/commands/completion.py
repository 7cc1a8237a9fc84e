"""``kubectl debugcap completion bash|zsh|fish``: the shell script that completes ``kubectl-debugcap``.

``kubectl debugcap <TAB>`` needs no script of ours: kubectl's own completion runs the
``kubectl_complete-debugcap`` executable this package installs (:mod:`debugcap.kubectl_plugin.completing`).
"""

from __future__ import annotations

import click

from debugcap.kubectl_plugin import completing


@click.command("completion")
@click.argument("shell", type=click.Choice(sorted(completing.SHELLS)))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script of SHELL for the kubectl-debugcap command.

    \b
    For `kubectl debugcap <TAB>` (kubectl 1.26+), load kubectl's own completion
    (`source <(kubectl completion bash)`) and keep kubectl_complete-debugcap, installed
    next to kubectl-debugcap, on your PATH: kubectl runs it for the plugin's words.
    For the kubectl-debugcap command itself:

    \b
      source <(kubectl debugcap completion bash)       # ~/.bashrc
      source <(kubectl debugcap completion zsh)        # ~/.zshrc, after compinit
      kubectl debugcap completion fish > ~/.config/fish/completions/kubectl-debugcap.fish
    """
    root = ctx.find_root().command
    click.echo(completing.script(shell, root))


COMMANDS: list[click.Command] = [completion]
