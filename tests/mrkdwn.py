"""Slack's mrkdwn rules for what Ferry posts (https://docs.slack.dev/messaging/formatting-message-text):
``&``, ``<`` and ``>`` are control characters and must reach Slack escaped (``&amp;``, ``&lt;``,
``&gt;``); ``<…>`` is markup: a mention (``<@U…>``), a channel (``<#C…>``), a broadcast
(``<!channel>``, ``<!here>``, ``<!everyone>``), a date, a link. The one markup Ferry may send is its
own mentions and channel links, of the people and channels it means (``allowed``)."""
from __future__ import annotations

import re

MARKUP = re.compile(r"<([^<>]*)>")
OWN = re.compile(r"^[@#][A-Z0-9]{3,21}$")  # <@U…>, <@W…>, <#C…>; no |label, no !broadcast
ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")
MARKER = re.compile("[\ue0f0\ue0f1]")  # gitops.identity's mention marker: never shown


def problems(text: str, allowed=None) -> list:
    """What in ``text`` Slack would read as markup Ferry did not mean: any ``<…>`` but a mention
    or channel (of an ID in ``allowed``, when given), a stray ``<``/``>``, a raw ``&``, a leaked
    mention marker."""
    found = []
    for markup in MARKUP.findall(text):
        if not OWN.match(markup):
            found.append(f"markup <{markup}>")
        elif allowed is not None and markup[1:] not in allowed:
            found.append(f"a mention nobody meant: <{markup}>")
    rest = MARKUP.sub(lambda m: "" if OWN.match(m.group(1)) else m.group(0), text)
    if "<" in rest or ">" in rest:
        found.append("an unescaped < or >")
    if ENTITY.search(text):
        found.append("an unescaped &")
    if MARKER.search(text):
        found.append("a mention marker left in the text")
    return found


def mentions(text: str) -> set:
    """The IDs ``text`` mentions or links as Slack reads it."""
    return {m[1:] for m in MARKUP.findall(text) if OWN.match(m)}


def block_texts(blocks) -> list:
    """Every text object's ``(type, text)`` in ``blocks``."""
    found = []
    if isinstance(blocks, dict):
        if blocks.get("type") in ("mrkdwn", "plain_text") and isinstance(blocks.get("text"), str):
            found.append((blocks["type"], blocks["text"]))
        for value in blocks.values():
            found += block_texts(value)
    elif isinstance(blocks, list):
        for value in blocks:
            found += block_texts(value)
    return found
