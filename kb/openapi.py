"""The OpenAPI document of the JSON API, served at /api/openapi.json."""

from __future__ import annotations

from typing import Any

_ERROR = {"description": "An error: {error, message}",
          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(schema: dict) -> dict:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


SLUG = {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}
OBJ = {"type": "object"}


def spec() -> dict[str, Any]:
    errors = {"400": _ERROR, "401": _ERROR, "403": _ERROR, "404": _ERROR}
    return {
        "openapi": "3.0.3",
        "info": {"title": "kb", "version": "1",
                 "description": "The complaint cheat sheet: search, read, compose, curate. "
                                "Authenticate with the session cookie or "
                                "'Authorization: Bearer <token>'. Writes take JSON only."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "session": {"type": "apiKey", "in": "cookie", "name": "session"}},
            "schemas": {
                "Error": {"type": "object", "properties": {
                    "error": {}, "message": {"type": "string"}}},
                "Hit": {"type": "object", "properties": {
                    "slug": {"type": "string"}, "title": {"type": "string"},
                    "snippet": {"type": "string", "description": "escaped HTML with <mark>"},
                    "score": {"type": "number"}, "category": {"type": "string"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "matched_phrasing": {"type": "string", "nullable": True},
                    "confident": {"type": "boolean",
                                  "description": "scores near the best; weaker results are "
                                  "shown behind 'More results'"},
                    "last_reviewed": {"type": "string", "nullable": True},
                    "review_due_since": {"type": "string", "nullable": True}}},
                "EntryFields": {"type": "object", "properties": {
                    "title": {"type": "string"},
                    "phrasings": {"type": "array", "items": {"type": "string"}},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "category": {"type": "string"}, "answer": {"type": "string"},
                    "phone": {"type": "string"}, "owner": {"type": "string"},
                    "markdown": {"type": "string", "description": "the whole entry file instead"},
                    "reason": {"type": "string"}}},
            },
        },
        "security": [{"bearer": []}, {"session": []}],
        "paths": {
            "/api/session": {"get": {
                "summary": "Whether the sign-in still holds (pages ask before sending a form)",
                "responses": {"200": _json({"type": "object", "properties": {
                    "username": {"type": "string"}}}), "401": _ERROR}}},
            "/api/search": {"get": {
                "summary": "Rank entries for the customer's words",
                "parameters": [
                    {"name": "q", "in": "query", "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                                "maximum": 50}},
                    {"name": "tag", "in": "query", "schema": {"type": "string"}},
                    {"name": "category", "in": "query", "schema": {"type": "string"}},
                    {"name": "typing", "in": "query", "schema": {"type": "string", "enum": ["1"]},
                     "description": "treat the last word as a prefix"},
                    {"name": "as_typed", "in": "query", "schema": {"type": "string",
                                                                  "enum": ["1"]},
                     "description": "correct no word: search the words exactly as typed"}],
                "responses": {"200": _json({"type": "object", "properties": {
                    "query": {"type": "string"}, "total": {"type": "integer"},
                    "did_you_mean": {"type": "string", "nullable": True,
                                     "description": "set only when words that are no word "
                                     "were corrected: the words the results are for"},
                    "confident": {"type": "boolean", "description": "the first result is a "
                                  "sure match; if not, pages offer to propose an entry"},
                    "search_id": {"type": "integer", "nullable": True},
                    "results": {"type": "array", "items": {"$ref": "#/components/schemas/Hit"}},
                }}), **errors}}},
            "/api/entries/{slug}": {
                "parameters": [SLUG],
                "get": {"summary": "An entry: fields, Markdown and sanitised HTML",
                        "responses": {"200": _json(OBJ), **errors}},
                "put": {"summary": "Save an entry (trainers); 409 with both versions when stale",
                        "requestBody": _body({"allOf": [
                            {"$ref": "#/components/schemas/EntryFields"},
                            {"type": "object", "required": ["base_version"], "properties": {
                                "base_version": {"type": "string", "nullable": True}}}]}),
                        "responses": {"200": _json(OBJ), "409": _json(OBJ, "Stale edit"),
                                      "422": _ERROR, **errors}}},
            "/api/entries/{slug}/history": {"parameters": [SLUG], "get": {
                "summary": "Versions of an entry, newest first",
                "responses": {"200": _json(OBJ), **errors}}},
            "/api/entries/{slug}/diff": {"parameters": [SLUG, {
                "name": "from", "in": "query", "schema": {"type": "string"}}, {
                "name": "to", "in": "query", "schema": {"type": "string"}}], "get": {
                "summary": "Unified diff between two versions",
                "responses": {"200": _json(OBJ), **errors}}},
            "/api/entries/{slug}/retire": {"parameters": [SLUG], "post": {
                "summary": "Retire an entry (trainers); a reason is required",
                "requestBody": _body({"type": "object", "required": ["reason"], "properties": {
                    "reason": {"type": "string"}}}),
                "responses": {"200": _json(OBJ), **errors}}},
            "/api/entries/{slug}/unretire": {"parameters": [SLUG], "post": {
                "summary": "Bring a retired entry back (trainers)", "requestBody": _body(OBJ),
                "responses": {"200": _json(OBJ), **errors}}},
            "/api/entries/{slug}/restore": {"parameters": [SLUG], "post": {
                "summary": "Restore an earlier version as a new commit (trainers)",
                "requestBody": _body({"type": "object", "required": ["version"], "properties": {
                    "version": {"type": "string"}, "reason": {"type": "string"}}}),
                "responses": {"200": _json(OBJ), "409": _ERROR, **errors}}},
            "/api/entries/{slug}/checks": {"parameters": [SLUG], "get": {
                "summary": "Answer checks for an entry",
                "responses": {"200": _json(OBJ), **errors}}},
            "/api/files/{name}": {"parameters": [{"name": "name", "in": "path",
                                                  "required": True,
                                                  "schema": {"type": "string"}}], "put": {
                "summary": "Add or replace a file that goes with answers (trainers; the body "
                           "is the PDF, PNG or JPEG, at most 2 MB; an entry names it in files)",
                "requestBody": {"required": True, "content": {
                    "application/octet-stream": {"schema": {"type": "string",
                                                            "format": "binary"}}}},
                "responses": {"201": _json(OBJ), "413": _ERROR, "422": _ERROR, **errors}}},
            "/api/outcomes": {"post": {
                "summary": "Say a copy did not help (the agent, or a helpdesk on a "
                           "re-contact or escalation), keyed by the copy's key from "
                           "POST /api/events",
                "requestBody": _body({"type": "object", "required": ["copy", "signal"],
                                      "properties": {
                    "copy": {"type": "string"},
                    "signal": {"type": "string", "enum": ["wrong", "unhappy", "outdated",
                                                          "recontact", "escalation"]}}}),
                "responses": {"201": _json({"type": "object", "properties": {
                    "copy": {"type": "string"}, "signal": {"type": "string"},
                    "slug": {"type": "string"}, "version": {"type": "string"}}}),
                    "404": _ERROR, **errors}}},
            "/api/facts": {"get": {
                "summary": "The sheet's facts (policy values filled into every answer)",
                "responses": {"200": _json({"type": "object", "properties": {
                    "facts": {"type": "array", "items": {"type": "object", "properties": {
                        "name": {"type": "string"}, "label": {"type": "string"},
                        "type": {"type": "string", "enum": ["text", "number", "days",
                                                            "money", "time", "link"]},
                        "value": {"type": "string"}}}}}}), **errors}}},
            "/api/sheet/{name}/check": {"parameters": [
                {"name": "name", "in": "path", "required": True, "schema": {
                    "type": "string", "enum": ["greeting", "closing", "phone_opening",
                                               "synonyms", "placeholders", "facts",
                                               "shorthand"]}}], "post": {
                "summary": "Check and preview a shared part as typed (trainers; nothing saved)",
                "requestBody": _body({"type": "object", "required": ["text"],
                                      "properties": {"text": {"type": "string"}}}),
                "responses": {"200": _json({"type": "object", "properties": {
                    "findings": {"type": "array", "items": OBJ},
                    "errors": {"type": "integer"}, "warnings": {"type": "integer"},
                    "checks_html": {"type": "string"},
                    "preview_html": {"type": "string"}}}), **errors}}},
            "/api/preview-entry": {"post": {
                "summary": "Preview unsaved entry text: sanitised HTML and the answer checks",
                "requestBody": _body({"type": "object", "properties": {
                    "title": {"type": "string"}, "answer": {"type": "string"},
                    "phone": {"type": "string"}, "category": {"type": "string"},
                    "tags": {"type": "string"}}}),
                "responses": {"200": _json({"type": "object", "properties": {
                    "answer_html": {"type": "string"}, "phone_html": {"type": "string"},
                    "findings": {"type": "array", "items": OBJ},
                    "errors": {"type": "integer"}, "warnings": {"type": "integer"}}}),
                    "413": _ERROR, "415": _ERROR, **errors}}},
            "/api/compose/{slug}": {"parameters": [SLUG], "post": {
                "summary": "The finished email with placeholder values filled in",
                "requestBody": _body({"type": "object",
                                      "additionalProperties": {"type": "string"}}),
                "responses": {"200": _json({"type": "object", "properties": {
                    "subject": {"type": "string"}, "text": {"type": "string"},
                    "html": {"type": "string"}, "mailto": {"type": "string"},
                    "missing": {"type": "array", "items": {"type": "string"}}}}),
                    "415": _ERROR, **errors}}},
            "/api/proposals": {
                "get": {"summary": "Your proposals and what became of them",
                        "responses": {"200": _json(OBJ), **errors}},
                "post": {"summary": "Propose a new entry or an edit, with a reason",
                         "requestBody": _body({"$ref": "#/components/schemas/EntryFields"}),
                         "responses": {"201": _json(OBJ), "422": _ERROR, **errors}}},
            "/api/events": {"post": {
                "summary": "Report that an email was copied (or inserted by the browser "
                           "extension), or that the extension's panel opened an entry",
                "requestBody": _body({"type": "object", "properties": {
                    "kind": {"type": "string", "enum": ["copy", "view"]},
                    "slug": {"type": "string"},
                    "version": {"type": "string"}, "search_id": {"type": "integer"}}}),
                "responses": {"201": _json(OBJ), **errors}}},
            "/api/favourites/{slug}": {"parameters": [SLUG], "post": {
                "summary": "Add or remove a favourite",
                "requestBody": _body({"type": "object", "properties": {"on": {"type": "boolean"}}}),
                "responses": {"200": _json(OBJ), **errors}}},
            "/api/entries/{slug}/fields": {"parameters": [SLUG, {
                "name": "channel", "in": "query", "required": False,
                "schema": {"type": "string", "enum": ["email", "chat"]}}], "get": {
                "summary": "The email's (or, with channel=chat and an entry that has one, "
                           "the chat message's) placeholders in order: name, label, "
                           "example, the value kb fills (the agent's name, the company) "
                           "and the fallback used when left empty; facts are not fields",
                "responses": {"200": _json({"type": "object", "properties": {
                    "slug": {"type": "string"}, "title": {"type": "string"},
                    "version": {"type": "string"},
                    "channel": {"type": "string", "enum": ["email", "chat"]},
                    "fields": {"type": "array", "items": OBJ}}}), **errors}}},
            "/api/extension/page-values": {"get": {
                "summary": "Where helpdesk pages show placeholder values (the admin's "
                           "rules, then the chosen presets), for the browser extension",
                "responses": {"200": _json({"type": "object", "properties": {
                    "sites": {"type": "array", "items": OBJ}}}), **errors}}},
            "/api/openapi.json": {"get": {"summary": "This document",
                                          "responses": {"200": _json(OBJ)}}},
            "/api/hooks/push": {"post": {
                "summary": "For the git server: fetch the shared remote now (KB_REMOTE). "
                           "Authenticated by KB_HOOK_SECRET: header X-KB-Hook-Secret or "
                           "X-Gitlab-Token, or X-Hub-Signature-256 over the body",
                "security": [],
                "responses": {"200": _json(OBJ), "403": _ERROR, "404": _ERROR,
                              "503": _ERROR}}},
        },
    }
