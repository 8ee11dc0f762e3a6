//! `/openapi.json`: an OpenAPI 3.1 document built from the route table ([`route_docs`]), the
//! same table the router is built from, plus the schemas of the bodies.

use serde_json::{json, Map, Value};

use crate::routes::{route_docs, Body, HttpMethod, ParamIn, RouteDoc};

/// The OpenAPI 3.1 document of the service.
pub fn document() -> Value {
    let mut paths = Map::new();
    for doc in route_docs() {
        let entry = paths
            .entry(doc.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(methods) = entry {
            let method = match doc.method {
                HttpMethod::Get => "get",
                HttpMethod::Post => "post",
            };
            methods.insert(method.to_string(), operation(&doc));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "fundledger",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Event-sourced fund-disbursement ledger for 郑政文〔2024〕62号. \
                            Commands and outcomes follow DESIGN §7, records §5, proofs §6, \
                            reads the row shapes of §8. Amounts are decimal strings in yuan.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "A token listed (as its BLAKE3 hash) in the service's configuration."}
            },
            "schemas": schemas(),
        },
    })
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn operation(doc: &RouteDoc) -> Value {
    let mut responses = Map::new();
    let success = match doc.response {
        Body::Json(name) => {
            json!({"description": "OK", "content": {"application/json": {"schema": schema_ref(name)}}})
        }
        Body::JsonArray(name) => {
            json!({"description": "OK", "content": {"application/json": {"schema": {"type": "array", "items": schema_ref(name)}}}})
        }
        Body::Text => {
            json!({"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}})
        }
        Body::Prometheus => {
            json!({"description": "OK", "content": {"text/plain; version=0.0.4": {"schema": {"type": "string"}}}})
        }
        Body::Html => {
            json!({"description": "OK", "content": {"text/html": {"schema": {"type": "string"}}}})
        }
    };
    responses.insert("200".to_string(), success);
    let mut errors: Vec<u16> = doc.errors.to_vec();
    if doc.authenticated {
        errors.push(401);
    }
    errors.push(503);
    errors.sort_unstable();
    errors.dedup();
    // Errors of the command route carry the outcome object when their code is one of §7.
    let error_schema = if doc.request.is_some() {
        json!({"oneOf": [schema_ref("Outcome"), schema_ref("Error")]})
    } else {
        schema_ref("Error")
    };
    for status in errors {
        responses.insert(
            status.to_string(),
            json!({
                "description": error_description(status),
                "content": {"application/json": {"schema": error_schema.clone()}},
            }),
        );
    }
    let parameters: Vec<Value> = doc
        .params
        .iter()
        .map(|param| {
            json!({
                "name": param.name,
                "in": match param.location { ParamIn::Path => "path", ParamIn::Query => "query" },
                "required": param.required,
                "description": param.description,
                "schema": if param.integer {
                    json!({"type": "integer", "minimum": 0})
                } else {
                    json!({"type": "string"})
                },
            })
        })
        .collect();
    let mut operation = json!({
        "operationId": doc.operation_id,
        "tags": [doc.tag],
        "summary": doc.summary,
        "responses": responses,
        "security": if doc.authenticated { json!([{"bearer": []}]) } else { json!([]) },
    });
    if !doc.description.is_empty() {
        operation["description"] = json!(doc.description);
    }
    if !parameters.is_empty() {
        operation["parameters"] = Value::Array(parameters);
    }
    if let Some(name) = doc.request {
        operation["requestBody"] = json!({
            "required": true,
            "content": {"application/json": {"schema": schema_ref(name)}},
        });
    }
    operation
}

fn error_description(status: u16) -> &'static str {
    match status {
        400 => "Malformed request (code malformed)",
        401 => "No or unknown bearer token (code unauthorized)",
        403 => "Forbidden to this role (forbidden, segregation_of_duties)",
        404 => "Not found (unknown_* or not_found)",
        409 => "Conflict (idempotency_conflict, duplicate_id, invalid_state)",
        413 => "Body too large (code malformed)",
        415 => "Not application/json (code malformed)",
        422 => "Refused by a rule of the policy",
        503 => "Busy (Retry-After), timed out, or the store is unavailable",
        _ => "Error",
    }
}

fn string() -> Value {
    json!({"type": "string"})
}

fn amount() -> Value {
    json!({"type": "string", "pattern": "^-?[0-9]+\\.[0-9]{2}$", "description": "yuan, two decimals"})
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "properties": properties})
}

fn schemas() -> Value {
    let nullable_string = json!({"type": ["string", "null"]});
    let date = json!({"type": "string", "format": "date"});
    let hash = json!({"type": "string", "pattern": "^[0-9a-f]{64}$"});
    let seq = json!({"type": "integer", "minimum": 1});
    let actor = object(
        &["id", "role"],
        json!({
            "id": string(),
            "role": {"enum": ["admin", "applicant", "reviewer", "approver", "finance", "government", "auditor"]},
            "unit": string(),
            "firm": string(),
        }),
    );
    json!({
        "Error": object(&["code", "message"], json!({"code": string(), "message": string()})),
        "Outcome": object(
            &["command_id", "outcome", "code", "message", "seqs"],
            json!({
                "command_id": nullable_string,
                "outcome": {"enum": ["accepted", "rejected"]},
                "code": nullable_string,
                "message": string(),
                "seqs": {"type": "array", "items": seq},
            }),
        ),
        "Command": {
            "type": "object",
            "required": ["command_id", "type"],
            "description": "A command of DESIGN §7: command_id, type and the fields of that type. \
                            actor and at are set by the service.",
            "properties": {
                "command_id": {"type": "string", "format": "uuid"},
                "type": {"enum": fundledger_ledger::COMMAND_TYPES},
            },
            "additionalProperties": true,
        },
        "Actor": actor,
        "Me": object(&["id", "role"], json!({
            "id": string(), "role": string(), "unit": string(), "firm": string(),
        })),
        "Health": object(&["status", "head_seq"], json!({
            "status": {"const": "ok"}, "head_seq": {"type": "integer"},
        })),
        "Summary": object(&["origin", "head_seq", "head_hash", "record_count"], json!({
            "origin": string(), "backend": string(), "head_seq": {"type": "integer"},
            "head_hash": hash, "record_count": {"type": "integer"},
            "policy_version": nullable_string,
        })),
        "BudgetRow": object(
            &["measure", "fiscal_year", "allocated", "committed", "paid", "remaining"],
            json!({
                "measure": string(), "fiscal_year": {"type": "integer"},
                "allocated": amount(), "committed": amount(), "paid": amount(),
                "remaining": amount(), "programme_planned": amount(),
            }),
        ),
        "FirmRow": object(&["uscc", "name", "voucher_claimed", "awards"], json!({
            "uscc": string(), "name": string(),
            "voucher_claimed": {"type": "object", "additionalProperties": amount(),
                                "description": "fiscal year → compute vouchers claimed"},
            "awards": {"type": "array", "items": string()},
        })),
        "TrancheYear": object(&["planned", "approved", "paid"], json!({
            "planned": amount(), "approved": amount(), "paid": amount(),
        })),
        "LabRow": object(
            &["lab", "firm", "envelope", "window_end", "approved", "paid", "remaining"],
            json!({
                "lab": string(), "firm": string(), "firm_name": string(),
                "recognition_date": date, "window_end": date, "envelope": amount(),
                "claimed": amount(), "approved": amount(), "paid": amount(), "remaining": amount(),
                "years": {"type": "object", "additionalProperties": schema_ref("TrancheYear")},
            }),
        ),
        "ApplicationRow": object(
            &["application_id", "provision", "firm", "fiscal_year", "status", "amount"],
            json!({
                "application_id": string(), "provision": string(), "measure": string(),
                "firm": string(), "firm_name": string(), "fiscal_year": {"type": "integer"},
                "status": {"enum": ["submitted", "reviewed", "approved", "rejected", "withdrawn"]},
                "amount": amount(), "requested": amount(),
                "approved": {"oneOf": [amount(), {"type": "null"}]},
                "paid": amount(), "submitted_on": date, "submitted_seq": seq,
                "code": nullable_string, "reason": nullable_string,
                "history": {"type": "array", "items": object(&["seq", "type", "actor", "recorded_at"], json!({
                    "seq": seq, "type": string(), "actor": string(), "recorded_at": string(),
                }))},
            }),
        ),
        "PaymentRow": object(&["payout_id", "application_id", "amount", "status"], json!({
            "payout_id": string(), "application_id": string(), "provision": string(),
            "measure": string(), "firm": string(), "firm_name": string(), "amount": amount(),
            "status": {"enum": ["ordered", "confirmed", "failed"]},
            "ordered_on": date, "ordered_seq": seq,
            "value_date": {"type": ["string", "null"], "format": "date"},
            "bank_reference": nullable_string, "settled_seq": {"type": ["integer", "null"]},
            "settled_hash": {"type": ["string", "null"]},
        })),
        "ClawbackRow": object(&["clawback_id", "application_id", "amount", "repaid", "outstanding"], json!({
            "clawback_id": string(), "application_id": string(), "amount": amount(),
            "repaid": amount(), "outstanding": amount(), "reason": string(),
        })),
        "QueueRow": object(&["application_id", "provision"], json!({
            "application_id": string(), "provision": string(), "firm": string(),
            "status": string(), "priority": {"type": "boolean"}, "submitted_seq": seq,
        })),
        "Record": object(&["seq", "prev", "hash", "body"], json!({
            "seq": seq, "prev": hash, "hash": hash,
            "body": {"type": "object", "required": ["seq", "type", "recorded_at", "command_id", "actor"]},
        })),
        "InclusionProof": object(&["leaf_index", "tree_size", "record_hash", "path", "root"], json!({
            "leaf_index": {"type": "integer"}, "tree_size": {"type": "integer"},
            "record_hash": hash, "path": {"type": "array", "items": hash}, "root": hash,
        })),
        "ConsistencyProof": object(&["old_size", "new_size", "old_root", "new_root", "path"], json!({
            "old_size": {"type": "integer"}, "new_size": {"type": "integer"},
            "old_root": hash, "new_root": hash, "path": {"type": "array", "items": hash},
        })),
        "OpenApi": {"type": "object", "description": "This document."},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` names a schema that exists.
    #[test]
    fn references_resolve() {
        let doc = document();
        let schemas = doc["components"]["schemas"].as_object().cloned().unwrap();
        let mut stack = vec![doc.clone()];
        let mut refs = 0;
        while let Some(value) = stack.pop() {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(target)) = map.get("$ref") {
                        let name = target.trim_start_matches("#/components/schemas/");
                        assert!(schemas.contains_key(name), "dangling {target}");
                        refs += 1;
                    }
                    stack.extend(map.into_iter().map(|(_, v)| v));
                }
                Value::Array(items) => stack.extend(items),
                _ => {}
            }
        }
        assert!(refs > 20);
    }

    #[test]
    fn operation_ids_are_unique() {
        let mut ids: Vec<_> = route_docs().iter().map(|d| d.operation_id).collect();
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), count);
    }
}
