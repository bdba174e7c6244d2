"""The OpenAPI description of themes, logos and the application's default theme (§5, §6),
built from the constants :mod:`meetd.domain.themes` validates with."""

from __future__ import annotations

import functools

from meetd.api.openapi import (
    UUID,
    Schema,
    api_operation,
    body,
    closed,
    enum,
    error_response,
    json_response,
    nullable,
    obj,
    page_parameters,
    path_parameter,
    ref,
    tag_of,
)
from meetd.domain import themes
from meetd.domain.logos import LOGO_TYPES

# The patterns as the validators apply them (the name rule keeps the OpenAPI regex dialect).
MAIN_COLOR: Schema = {"type": "string", "maxLength": 7, "pattern": themes.MAIN_COLOR.pattern}
SHORT_COMPANY_URL: Schema = {
    "type": "string",
    "maxLength": themes.MAX_SHORT_URL,
    "pattern": themes.SHORT_COMPANY_URL.pattern,
    "description": "Unique across the server; carried in the links of the theme's rooms. "
    f"Reserved: {', '.join(sorted(themes.RESERVED_SHORT_URLS))} (in any case).",
}
TEXT = r"^[^\x00]*$"


def theme_fields() -> dict[str, Schema]:
    return {
        "theme_name": {
            "type": "string",
            "minLength": 1,
            "maxLength": themes.MAX_NAME,
            "pattern": TEXT,
            "description": "Unique in the application; default: the theme's id.",
        },
        "main_color": MAIN_COLOR,
        "brand_text": {
            "type": "string",
            "minLength": 1,
            "maxLength": themes.MAX_BRAND_TEXT,
            "pattern": TEXT,
        },
        "short_company_url": nullable(SHORT_COMPANY_URL),
    }


def theme_schema() -> Schema:
    key = nullable({"type": "string", "description": "The logo's key in the file store."})
    link = nullable({"type": "string", "format": "uri", "description": "Downloads the logo."})
    return closed(
        {
            "theme_id": UUID,
            "theme_name": {"type": "string"},
            "domain": enum(["VCP"]),
            "account_id": {"type": "string"},
            "application_id": UUID,
            "main_color": {"type": "string"},
            "short_company_url": nullable({"type": "string"}),
            "brand_text": {"type": "string"},
            "brand_image_colored": key,
            "brand_image_white": key,
            "branded_favicon": key,
            "brand_image_white_url": link,
            "brand_image_colored_url": link,
            "branded_favicon_url": link,
        }
    )


def upload_form_schema() -> Schema:
    return closed(
        {
            "url": {"type": "string", "format": "uri", "description": "POST the form here."},
            "fields": {
                "type": "object",
                "description": "Send every field, then the PNG as the part named file, as "
                "multipart/form-data; the form is signed and expires after an hour.",
                "properties": {
                    "Content-Type": enum(["image/png"]),
                    "key": {"type": "string"},
                    "logoType": enum(LOGO_TYPES),
                },
                "required": ["Content-Type", "key", "logoType"],
                "additionalProperties": {"type": "string"},
            },
        }
    )


def finalize_schema() -> Schema:
    key = {"type": "string", "maxLength": 1024, "pattern": TEXT}
    return obj(
        {
            "keys": {
                "type": "array",
                "minItems": 1,
                "maxItems": len(LOGO_TYPES),
                "uniqueItems": True,
                "items": {"oneOf": [key, obj({"key": key}, required=("key",))]},
                "description": "The upload forms' keys, at most one per logo type.",
            }
        },
        required=("keys",),
    )


def finalize_errors() -> Schema:
    failure = obj(
        {
            "logoKey": {"type": "string"},
            "code": enum(["key_not_found", "invalid_logo_properties"]),
            "invalidProperty": enum(["exceeds_size", "type", "dimensions", "transparent_bg"]),
        },
        required=("logoKey", "code"),
    )
    return json_response(
        "InputValidationError: the body fails validation. BadRequestError (could not "
        "finalize logos): errors names each key that is missing or whose file breaks a rule.",
        obj(
            {
                "message": {"type": "string"},
                "name": enum(["InputValidationError", "BadRequestError"]),
                "status": {"type": "integer", "enum": [400]},
                "errors": {"type": "array", "items": failure},
            },
            required=("message", "name", "status"),
        ),
    )


def schemas() -> dict[str, Schema]:
    fields = theme_fields()
    return {
        "Theme": theme_schema(),
        "CreateTheme": obj(fields, required=("main_color", "brand_text")),
        "UpdateTheme": obj(
            {"update_details": obj(fields, minProperties=1)}, required=("update_details",)
        ),
        "LogoUploadForm": upload_form_schema(),
        "FinalizeLogos": finalize_schema(),
        "Application": closed(
            {
                "application_id": UUID,
                "account_id": {"type": "string"},
                "default_theme_id": nullable(UUID),
            }
        ),
        "UpdateApplication": obj(
            {
                "update_details": obj(
                    {
                        "default_theme_id": nullable(
                            {
                                "type": "string",
                                "description": "A theme of this application (any other"
                                " string: 400 BadRequestError); null: none.",
                            }
                        )
                    },
                    required=("default_theme_id",),
                )
            },
            required=("update_details",),
        ),
    }


def paths(prefix: str) -> dict[str, Schema]:
    tag = tag_of(prefix)
    operation = functools.partial(api_operation, tag)
    theme = json_response("The theme.", ref("Theme"))
    theme_id = path_parameter(
        "theme_id", "Anything but a theme of the calling application is a 404."
    )
    page = ref("RoomPageBeta" if tag == "beta" else "RoomPage")
    return {
        f"{prefix}/themes": {
            "get": operation(
                "list_themes",
                "The application's themes, oldest first",
                {"200": json_response("The themes.", {"type": "array", "items": ref("Theme")})},
            ),
            "post": operation(
                "create_theme",
                "Create a theme",
                {
                    "201": json_response("The new theme.", ref("Theme")),
                    "400": "BadRequest",
                    "403": "Forbidden",
                    "409": "Conflict",
                },
                requestBody=body("CreateTheme"),
            ),
        },
        f"{prefix}/themes/logos-upload-urls": {
            "get": operation(
                "logo_upload_forms",
                "Three signed upload forms: white, colored and favicon",
                {
                    "200": json_response(
                        "One form per logo type.",
                        {
                            "type": "array",
                            "items": ref("LogoUploadForm"),
                            "minItems": 3,
                            "maxItems": 3,
                        },
                    )
                },
            )
        },
        f"{prefix}/themes/{{theme_id}}": {
            "parameters": [theme_id],
            "get": operation("get_theme", "Read a theme", {"200": theme, "404": "NotFound"}),
            "patch": operation(
                "update_theme",
                "Change a theme",
                {"200": theme, "400": "BadRequest", "404": "NotFound", "409": "Conflict"},
                requestBody=body("UpdateTheme"),
            ),
            "delete": operation(
                "delete_theme",
                "Delete a theme",
                {
                    "204": {"description": "Deleted."},
                    "400": error_response(
                        "InputValidationError: force is not a boolean. BadRequestError (could "
                        "not delete theme): without force, a theme used by rooms or as the "
                        "application's default stays; errors lists the uses.",
                        ["InputValidationError", "BadRequestError"],
                        400,
                    ),
                    "404": "NotFound",
                },
                parameters=[
                    {
                        "name": "force",
                        "in": "query",
                        "description": "true: the rooms and the application let go of the "
                        "theme. true/false in any case.",
                        "schema": {
                            "type": "string",
                            "pattern": "^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])$",
                        },
                    }
                ],
            ),
        },
        f"{prefix}/themes/{{theme_id}}/rooms": {
            "parameters": [theme_id],
            "get": operation(
                "list_theme_rooms",
                "A page of the rooms that use the theme",
                {
                    "200": json_response("A page of rooms.", page),
                    "400": "InputValidationError",
                    "404": "NotFound",
                },
                parameters=page_parameters(),
            ),
        },
        f"{prefix}/themes/{{theme_id}}/finalizeLogos": {
            "parameters": [theme_id],
            "put": operation(
                "finalize_logos",
                "Check uploaded logos and make them the theme's",
                {"200": theme, "400": finalize_errors(), "404": "NotFound"},
                requestBody=body("FinalizeLogos"),
            ),
        },
        f"{prefix}/applications": {
            "patch": operation(
                "update_application",
                "Set the application's default theme",
                {
                    "200": json_response("The application.", ref("Application")),
                    "400": "BadRequest",
                },
                requestBody=body("UpdateApplication"),
            )
        },
    }
