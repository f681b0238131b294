"""Ferry's own mentions, for FerrySlack: the one Slack markup Ferry sends.

``gitops.identity.mention`` and ``channel`` write a person or a channel as a marker: private-use
characters around a per-process random nonce and the ID, which no text from outside (chat
arguments, reasons, Git, Flux, manifests) can contain. Everything FerrySlack sends is escaped
first; then exactly those markers become ``<@U…>`` / ``<#C…>`` where Slack reads markup (message
text, ``mrkdwn`` texts of blocks) and the bare ID where it does not (code blocks, ``plain_text``,
files). Backends cannot import plugins: the module is found in ``sys.modules`` once the plugins
have loaded it (before that no text can hold a marker).
"""
import sys

IDENTITY = "gitops.identity"  # writes Ferry's mentions; a plugin module, so found, not imported


def ferry_marks(text: str, markup: bool = True) -> str:
    """Ferry's own mentions in ``text`` (already escaped) as Slack's ``<@U…>``/``<#C…>``, or the
    bare ID where Slack shows no markup (``markup`` false: code, plain text, files). Until the
    plugins have loaded that module, no text can hold one. What is left of the marker's characters
    (text shaped like one, written by someone else) is shown as U+FFFD."""
    identity = sys.modules.get(IDENTITY)
    if identity is not None:
        text = identity.marks(text, lambda kind, ident: f"<{kind}{ident}>" if markup else ident)
    return text.translate(_NOT_MARKS)


_NOT_MARKS = {0xE0F0: "\ufffd", 0xE0F1: "\ufffd"}  # gitops.identity's MARK_OPEN, MARK_CLOSE


def blocks_for_slack(value, markup: bool = False):
    """Block Kit ``value`` with Ferry's mentions in its texts as Slack shows them: mentions in
    ``mrkdwn`` texts (escaped by whoever built them), the bare ID anywhere else."""
    if isinstance(value, list):
        return [blocks_for_slack(v, markup) for v in value]
    if isinstance(value, dict):
        mrkdwn = value.get("type") == "mrkdwn"
        return {k: blocks_for_slack(v, mrkdwn and k == "text") for k, v in value.items()}
    return ferry_marks(value, markup) if isinstance(value, str) else value
