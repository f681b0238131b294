"""Block Kit's documented shape and limits, for the blocks Ferry sends (the local Slack refuses
others with ``invalid_blocks``, as Slack does). From Slack's reference
(https://docs.slack.dev/reference/block-kit/): blocks, block elements, composition objects."""
from __future__ import annotations

MAX_BLOCKS = 50  # in one message
BLOCK_ID = 255
SECTION_TEXT = 3000
ACTIONS_ELEMENTS = 25
BUTTON_TEXT = 75
ACTION_ID = 255
BUTTON_VALUE = 2000
STYLES = ("primary", "danger")


def problems(blocks) -> list:
    """What is wrong with ``blocks`` against Block Kit's reference (only the kinds Ferry uses)."""
    found = []
    if not isinstance(blocks, list) or not 1 <= len(blocks) <= MAX_BLOCKS:
        return [f"blocks must be a list of 1 to {MAX_BLOCKS} blocks"]
    action_ids = []
    for i, block in enumerate(blocks):
        where = f"blocks[{i}]"
        if not isinstance(block, dict):
            found.append(f"{where} is not an object")
            continue
        if len(str(block.get("block_id", ""))) > BLOCK_ID:
            found.append(f"{where}.block_id is over {BLOCK_ID} characters")
        if block.get("type") == "section":
            found += _text(block.get("text"), f"{where}.text", SECTION_TEXT, ("mrkdwn", "plain_text"))
            unknown = set(block) - {"type", "text", "block_id", "fields", "accessory", "expand"}
            if unknown:
                found.append(f"{where} has unknown fields {sorted(unknown)}")
        elif block.get("type") == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= ACTIONS_ELEMENTS:
                found.append(f"{where}.elements must hold 1 to {ACTIONS_ELEMENTS} elements")
                continue
            for j, element in enumerate(elements):
                found += _button(element, f"{where}.elements[{j}]")
                action_ids.append(element.get("action_id") if isinstance(element, dict) else None)
        else:
            found.append(f"{where}.type {block.get('type')!r} is not one Ferry sends")
    if len(action_ids) != len(set(action_ids)):
        found.append("action_ids must be unique in a message")
    return found


def _text(obj, where: str, limit: int, kinds) -> list:
    if not isinstance(obj, dict) or obj.get("type") not in kinds or not isinstance(obj.get("text"), str):
        return [f"{where} must be a text object of type {'/'.join(kinds)}"]
    if not 1 <= len(obj["text"]) <= limit:
        return [f"{where}.text must be 1 to {limit} characters, not {len(obj['text'])}"]
    return []


def _button(element, where: str) -> list:
    if not isinstance(element, dict) or element.get("type") != "button":
        return [f"{where} is not a button"]
    found = _text(element.get("text"), f"{where}.text", BUTTON_TEXT, ("plain_text",))
    if not 1 <= len(str(element.get("action_id") or "")) <= ACTION_ID:
        found.append(f"{where}.action_id must be 1 to {ACTION_ID} characters")
    if len(str(element.get("value", ""))) > BUTTON_VALUE:
        found.append(f"{where}.value is over {BUTTON_VALUE} characters")
    if "style" in element and element["style"] not in STYLES:
        found.append(f"{where}.style must be one of {STYLES}")
    return found
