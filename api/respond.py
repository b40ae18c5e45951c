"""One response object, two encodings: Subsonic XML (the default) and JSON (``f=json``, ``f=jsonp``).

A handler returns a :class:`Reply`: the payload is a dict of elements where a
scalar is an attribute, a dict a child element, a list of dicts repeated child
elements, and the key ``value`` an element's text (``<genre songCount="3">Rock</genre>``).
JSON is the same tree under ``subsonic-response``, as the OpenSubsonic spec
shows it. Errors are values too (:class:`ApiError`), with the protocol's codes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

API_VERSION = "1.16.1"
SERVER_TYPE = "earshot"
SERVER_VERSION = "0.1.0"
XMLNS = "http://subsonic.org/restapi"
HELP = "https://opensubsonic.netlify.app/docs/responses/error/"
CALLBACK = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$.]{0,63}$")

# The protocol's error codes (OpenSubsonic: Responses/error).
GENERIC, MISSING, CLIENT_OLD, SERVER_OLD = 0, 10, 20, 30
WRONG_CREDENTIALS, NO_TOKEN_FOR_LDAP, AUTH_NOT_SUPPORTED, CONFLICTING_AUTH, BAD_API_KEY = 40, 41, 42, 43, 44
NOT_AUTHORISED, NOT_FOUND = 50, 70


class ApiError(Exception):
    """An error answer: ``code`` from the protocol, ``message`` for a person."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class Reply:
    payload: dict[str, Any] = field(default_factory=dict)


def envelope(payload: dict[str, Any] | None, error: ApiError | None = None) -> dict[str, Any]:
    head: dict[str, Any] = {
        "status": "failed" if error else "ok",
        "version": API_VERSION,
        "type": SERVER_TYPE,
        "serverVersion": SERVER_VERSION,
        "openSubsonic": True,
    }
    if error is not None:
        head["error"] = {"code": error.code, "message": error.message, "helpUrl": HELP}
    return {**head, **(payload or {})}


def encode(body: dict[str, Any], fmt: str, callback: str | None) -> tuple[bytes, str]:
    """(bytes, content type) of a response tree in the asked format."""
    if fmt in ("json", "jsonp"):
        text = json.dumps({"subsonic-response": _without_nulls(body)}, separators=(",", ":"), ensure_ascii=False)
        if fmt == "jsonp" and callback and CALLBACK.match(callback):
            return f"{callback}({text});".encode(), "application/javascript; charset=utf-8"
        return text.encode(), "application/json; charset=utf-8"
    return ('<?xml version="1.0" encoding="UTF-8"?>' + _element("subsonic-response", body, root=True)).encode(), (
        "text/xml; charset=utf-8"
    )


def _without_nulls(node: Any) -> Any:
    """The tree without its None values: a field with no value is left out, as in XML (strict client decoders
    read a ``null`` where they expect a number or a text as an error). A dict with no None and nothing in it to
    change (most entries: they leave out their empty fields themselves, and a song's ``replayGain`` is a flat
    dict without None) is returned as it is."""
    if type(node) is dict:
        for value in node.values():
            if value is None or type(value) is list or (type(value) is dict and _without_nulls(value) is not value):
                return {k: _without_nulls(v) for k, v in node.items() if v is not None}
        return node
    if type(node) is list:
        return [_without_nulls(v) for v in node if v is not None]
    return node


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# An attribute's value in double quotes: what quoteattr escapes, as one translation (a 500-song page is
# ~14,000 attributes: quoteattr's replace chain was most of the XML encoder's time).
_ATTRIBUTE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\n": "&#10;", "\r": "&#13;",
                            "\t": "&#9;"})  # fmt: skip


def _attribute(value: Any) -> str:
    kind = type(value)
    if kind is bool:
        return '"true"' if value else '"false"'
    if kind is int or kind is float:
        return f'"{value}"'
    return '"' + str(value).translate(_ATTRIBUTE) + '"'


def _element(name: str, node: dict[str, Any], *, root: bool = False) -> str:
    attrs, children, text = [], [], None
    if root:
        attrs.append(f"xmlns={quoteattr(XMLNS)}")
    for key, value in node.items():
        if value is None:
            continue
        kind = type(value)
        if kind is dict:
            children.append(_element(key, value))
        elif kind is list:
            for item in value:
                children.append(
                    _element(key, item) if type(item) is dict else f"<{key}>{xml_escape(_scalar(item))}</{key}>"
                )
        elif key == "value":
            text = xml_escape(_scalar(value))
        else:
            attrs.append(f"{key}={_attribute(value)}")
    head = " ".join([name, *attrs])
    inner = (text or "") + "".join(children)
    return f"<{head}>{inner}</{name}>" if inner else f"<{head}/>"
