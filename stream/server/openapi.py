"""The OpenAPI 3.0 document served at ``GET /openapi.json``."""
from __future__ import annotations

from typing import Any, Dict, Sequence

from ..config import ServerConfig


def openapi_spec(labels: Sequence[str], top_k: int, s: ServerConfig, max_images: int) -> Dict[str, Any]:
    """The OpenAPI 3.0 description of this server (labels, default top-k and limits filled in)."""
    labels_ = list(labels)
    n = len(labels_)
    ref = lambda name: {"$ref": f"#/components/schemas/{name}"}  # noqa: E731
    json_of = lambda schema: {"application/json": {"schema": schema}}  # noqa: E731
    errors = {str(c): {"description": d, "content": json_of(ref("Error"))} for c, d in (
        ("400", "No image field, empty or corrupt image, bad boxes or top_k"),
        ("405", "Wrong method"),
        ("413", f"Request over {s.max_upload_mb:g} MB, or an image over {s.max_image_pixels:,} pixels"),
        ("415", "Not a JPEG or PNG image"))}
    top_k = {"name": "top_k", "in": "query", "required": False,
             "description": f"colours per result (default {top_k})",
             "schema": {"type": "integer", "minimum": 1, "maximum": n}}
    image = {"type": "string", "format": "binary", "description": "a JPEG or PNG file"}
    return {
        "openapi": "3.0.3",
        "info": {"title": "carcolor", "version": "1",
                 "description": "Car colour recognition. Compatible with the original server's POST /."},
        "paths": {
            "/": {"post": {
                "summary": "Colours of one car image (the original API)",
                "operationId": "classifyOne",
                "parameters": [top_k],
                "requestBody": {"required": True, "content": {"multipart/form-data": {
                    "schema": {"type": "object", "required": ["image"], "properties": {"image": image}}}}},
                "responses": {"200": {"description": "top colours and the decision",
                                      "content": json_of(ref("Result"))}, **errors}}},
            "/classify": {"post": {
                "summary": "Several car images, or one scene image with boxes, in one model call",
                "operationId": "classifyMany",
                "parameters": [top_k],
                "requestBody": {"required": True, "content": {"multipart/form-data": {
                    "schema": {"type": "object", "required": ["image"], "properties": {
                        "image": {"type": "array", "items": image, "maxItems": max_images,
                                  "description": "one or more images (repeat the field)"},
                        "boxes": {"type": "string", "description":
                                  "JSON [[x1, y1, x2, y2], ...] pixel boxes on one scene image"}}},
                    "encoding": {"image": {"contentType": "image/jpeg, image/png"}}}}},
                "responses": {"200": {"description": "one result per image (or per box), in order",
                                      "content": json_of({"type": "object", "required": ["results"],
                                                          "properties": {"results": {
                                                              "type": "array", "items": ref("Result")}}})},
                              **errors}}},
            "/health": {"get": {"summary": "Liveness, model and counters", "operationId": "health",
                                "responses": {"200": {"description": "server is up",
                                                      "content": json_of({"type": "object"})}}}},
            "/labels": {"get": {"summary": "The model's colours", "operationId": "labels",
                                "responses": {"200": {"description": "labels in output order",
                                                      "content": json_of({"type": "object", "properties": {
                                                          "labels": {"type": "array",
                                                                     "items": {"type": "string"}}}})}}}},
            "/openapi.json": {"get": {"summary": "This document", "operationId": "openapi",
                                      "responses": {"200": {"description": "OpenAPI 3.0 document",
                                                            "content": json_of({"type": "object"})}}}},
        },
        "components": {"schemas": {
            "Color": {"type": "object", "required": ["color", "prob"], "properties": {
                "color": {"type": "string", "enum": labels_},
                "prob": {"type": "number", "minimum": 0, "maximum": 1}}},
            "Result": {"type": "object", "required": ["colors", "color"], "properties": {
                "colors": {"type": "array", "items": ref("Color"), "minItems": 1, "maxItems": n,
                           "description": "best first"},
                "color": {"type": "string", "enum": labels_ + ["unknown"],
                          "description": "the decision: top colour, or unknown below unknown_threshold"},
                "box": {"type": "array", "items": {"type": "integer"}, "minItems": 4, "maxItems": 4,
                        "description": "the crop box, for requests with boxes"}}},
            "Error": {"type": "object", "required": ["error"],
                      "properties": {"error": {"type": "string"}}},
        }},
    }
