//! The one route table: the router and `/openapi.json` are both built from [`table`], so a
//! route cannot exist without its OpenAPI entry. [`route_docs`] is the table without handlers.

use axum::handler::Handler;
use axum::routing::{get, post, MethodRouter};
use axum::Router;

use crate::handlers;
use crate::AppState;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Post,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
        }
    }
}

/// What a route answers with on success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// JSON of a schema of `components.schemas`.
    Json(&'static str),
    /// A JSON array of a schema of `components.schemas`.
    JsonArray(&'static str),
    /// `text/plain` (the signed checkpoint note).
    Text,
    /// The Prometheus text format.
    Prometheus,
    /// The dashboard page.
    Html,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamIn {
    Path,
    Query,
}

/// One path or query parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param {
    pub name: &'static str,
    pub location: ParamIn,
    pub required: bool,
    /// `integer` or `string`.
    pub integer: bool,
    pub description: &'static str,
}

const fn path(name: &'static str, integer: bool, description: &'static str) -> Param {
    Param {
        name,
        location: ParamIn::Path,
        required: true,
        integer,
        description,
    }
}

const fn query(name: &'static str, required: bool, description: &'static str) -> Param {
    Param {
        name,
        location: ParamIn::Query,
        required,
        integer: true,
        description,
    }
}

const FIRM_PARAMS: &[Param] = &[path(
    "uscc",
    false,
    "Unified social credit code (统一社会信用代码)",
)];
const APPLICATION_PARAMS: &[Param] = &[path("id", false, "application_id")];
const EVENTS_PARAMS: &[Param] = &[
    query(
        "after",
        false,
        "Records with seq greater than this (default 0)",
    ),
    query(
        "limit",
        false,
        "Most records returned, 1 to 1000 (default 100)",
    ),
];
const INCLUSION_PARAMS: &[Param] = &[
    path("seq", true, "Seq of the record (leaf index + 1)"),
    query("size", false, "Tree size (default: the published head)"),
];
const CONSISTENCY_PARAMS: &[Param] = &[
    query("old", true, "Size of the earlier tree (at least 1)"),
    query(
        "new",
        false,
        "Size of the later tree (default: the published head)",
    ),
];

/// The documentation of one route: everything `/openapi.json` says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteDoc {
    pub method: HttpMethod,
    /// The path in axum's and OpenAPI's common syntax (`/v1/firms/{uscc}`).
    pub path: &'static str,
    pub operation_id: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub description: &'static str,
    /// Whether a bearer token is required (401 without one).
    pub authenticated: bool,
    pub params: &'static [Param],
    /// The request body schema (JSON), if any.
    pub request: Option<&'static str>,
    pub response: Body,
    /// Error statuses besides 401 (added for authenticated routes) and 503.
    pub errors: &'static [u16],
}

/// A route: its documentation and its handler.
pub(crate) struct Route {
    pub doc: RouteDoc,
    pub handler: MethodRouter<AppState>,
}

fn route<H, T>(doc: RouteDoc, handler: H) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let handler = match doc.method {
        HttpMethod::Get => get(handler),
        HttpMethod::Post => post(handler),
    };
    Route { doc, handler }
}

/// A GET route answering JSON, authenticated, with no parameters; adjust with struct update.
const fn read(
    path: &'static str,
    operation_id: &'static str,
    summary: &'static str,
    response: Body,
) -> RouteDoc {
    RouteDoc {
        method: HttpMethod::Get,
        path,
        operation_id,
        tag: "reads",
        summary,
        description: "",
        authenticated: true,
        params: &[],
        request: None,
        response,
        errors: &[],
    }
}

/// Every route of the service.
pub(crate) fn table() -> Vec<Route> {
    vec![
        route(
            RouteDoc {
                tag: "service",
                authenticated: false,
                description:
                    "The finance bureau's dashboard (预算执行、算力券、实验室计划、拨付). \
                              Give it a token as `/#token=…` or in its token box.",
                ..read("/", "dashboard", "Dashboard page", Body::Html)
            },
            handlers::dashboard,
        ),
        route(
            RouteDoc {
                tag: "service",
                authenticated: false,
                ..read(
                    "/healthz",
                    "healthz",
                    "Liveness and the published head",
                    Body::Json("Health"),
                )
            },
            handlers::healthz,
        ),
        route(
            RouteDoc {
                tag: "service",
                authenticated: false,
                description: "Commands by type and outcome code, batches, append latency, head, \
                              conflicts, HTTP responses by status.",
                ..read(
                    "/metrics",
                    "metrics",
                    "Prometheus metrics",
                    Body::Prometheus,
                )
            },
            handlers::metrics,
        ),
        route(
            RouteDoc {
                tag: "service",
                authenticated: false,
                ..read(
                    "/openapi.json",
                    "openapi",
                    "This OpenAPI document",
                    Body::Json("OpenApi"),
                )
            },
            handlers::openapi,
        ),
        route(
            RouteDoc {
                method: HttpMethod::Post,
                tag: "commands",
                description: "One command object of DESIGN §7. The actor is the token's \
                              principal: an `actor` in the body is replaced and an `at` removed. \
                              Answers the outcome object: 200 when accepted, else the status of \
                              its code (400 malformed, 401 unauthorized, 403 forbidden or \
                              segregation_of_duties, 404 unknown_*, 409 idempotency_conflict, \
                              duplicate_id or invalid_state, 422 rule rejections; 413 and 415 \
                              with code malformed). 503 busy with Retry-After when the writer's \
                              queue is full. Repeating a command_id with the same content \
                              returns the first outcome.",
                request: Some("Command"),
                errors: &[400, 403, 404, 409, 413, 415, 422],
                ..read(
                    "/v1/commands",
                    "submitCommand",
                    "Submit one command",
                    Body::Json("Outcome"),
                )
            },
            handlers::post_command,
        ),
        route(
            read(
                "/v1/me",
                "me",
                "The caller's principal (id, role, unit, firm)",
                Body::Json("Me"),
            ),
            handlers::me,
        ),
        route(
            read(
                "/v1/summary",
                "summary",
                "The chain's head seq and hash, record count and origin",
                Body::Json("Summary"),
            ),
            handlers::summary,
        ),
        route(
            RouteDoc {
                errors: &[403],
                description: "Forbidden to applicants.",
                ..read(
                    "/v1/budgets",
                    "budgets",
                    "Budgets by measure and fiscal year",
                    Body::JsonArray("BudgetRow"),
                )
            },
            handlers::budgets,
        ),
        route(
            RouteDoc {
                description: "Applicants see only their own firm.",
                ..read(
                    "/v1/firms",
                    "firms",
                    "Firms: voucher claims by year and awards",
                    Body::JsonArray("FirmRow"),
                )
            },
            handlers::firms,
        ),
        route(
            RouteDoc {
                params: FIRM_PARAMS,
                errors: &[403, 404],
                description: "403 for an applicant asking about another firm.",
                ..read(
                    "/v1/firms/{uscc}",
                    "firm",
                    "One firm",
                    Body::Json("FirmRow"),
                )
            },
            handlers::firm,
        ),
        route(
            RouteDoc {
                description: "Applicants see only their own firm's labs.",
                ..read(
                    "/v1/labs",
                    "labs",
                    "Key-lab programmes (5-year envelopes)",
                    Body::JsonArray("LabRow"),
                )
            },
            handlers::labs,
        ),
        route(
            RouteDoc {
                description: "In submission order; applicants see only their own firm's.",
                ..read(
                    "/v1/applications",
                    "applications",
                    "Applications with status and history",
                    Body::JsonArray("ApplicationRow"),
                )
            },
            handlers::applications,
        ),
        route(
            RouteDoc {
                params: APPLICATION_PARAMS,
                errors: &[404],
                description: "404 unknown_application when there is none, or when it belongs to \
                              another firm than an applicant's own.",
                ..read(
                    "/v1/applications/{id}",
                    "application",
                    "One application",
                    Body::Json("ApplicationRow"),
                )
            },
            handlers::application,
        ),
        route(
            RouteDoc {
                description: "In order of ordering; applicants see only their own firm's.",
                ..read(
                    "/v1/payments",
                    "payments",
                    "The payment register",
                    Body::JsonArray("PaymentRow"),
                )
            },
            handlers::payments,
        ),
        route(
            RouteDoc {
                description: "Applicants see only their own firm's.",
                ..read(
                    "/v1/clawbacks",
                    "clawbacks",
                    "Clawbacks and repayments",
                    Body::JsonArray("ClawbackRow"),
                )
            },
            handlers::clawbacks,
        ),
        route(
            RouteDoc {
                description: "Open applications, provincial-voucher holders first; applicants \
                              see only their own firm's.",
                ..read(
                    "/v1/queue",
                    "queue",
                    "The review queue",
                    Body::JsonArray("QueueRow"),
                )
            },
            handlers::queue,
        ),
        route(
            RouteDoc {
                params: EVENTS_PARAMS,
                errors: &[400, 403],
                description: "Records `{seq, prev, hash, body}` of DESIGN §5 in seq order. \
                              Forbidden to applicants (the log names every firm).",
                ..read(
                    "/v1/events",
                    "events",
                    "The raw log, a page at a time",
                    Body::JsonArray("Record"),
                )
            },
            handlers::events,
        ),
        route(
            RouteDoc {
                tag: "audit",
                errors: &[404],
                description: "A C2SP tlog-checkpoint signed note (DESIGN §6); 404 until one has \
                              been signed.",
                ..read(
                    "/v1/checkpoint",
                    "checkpoint",
                    "The latest signed checkpoint",
                    Body::Text,
                )
            },
            handlers::checkpoint,
        ),
        route(
            RouteDoc {
                tag: "audit",
                params: INCLUSION_PARAMS,
                errors: &[400, 404],
                ..read(
                    "/v1/proofs/inclusion/{seq}",
                    "inclusionProof",
                    "RFC 9162 inclusion proof of one record",
                    Body::Json("InclusionProof"),
                )
            },
            handlers::inclusion_proof,
        ),
        route(
            RouteDoc {
                tag: "audit",
                params: CONSISTENCY_PARAMS,
                errors: &[400, 404],
                ..read(
                    "/v1/proofs/consistency",
                    "consistencyProof",
                    "RFC 9162 consistency proof between two tree sizes",
                    Body::Json("ConsistencyProof"),
                )
            },
            handlers::consistency_proof,
        ),
    ]
}

/// The documentation of every route, in table order.
pub fn route_docs() -> Vec<RouteDoc> {
    table().into_iter().map(|route| route.doc).collect()
}

/// The routes as a router (state not yet supplied).
pub(crate) fn router() -> Router<AppState> {
    table().into_iter().fold(Router::new(), |router, route| {
        router.route(route.doc.path, route.handler)
    })
}
