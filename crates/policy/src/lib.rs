//! The rules catalogue of 郑政文〔2024〕62号 (郑州市支持人工智能创新发展若干政策措施).
//!
//! - [`Catalogue`]: one policy document — its validity window, [`PolicyOptions`], the ten
//!   [`Measure`]s with their 责任单位, and the [`Provision`]s that pay money. Load the built-in
//!   catalogue with [`Catalogue::builtin`], or an amendment with [`Catalogue::from_toml`]
//!   (which validates and explains any [`CatalogueError`]).
//! - [`Provision`]: one kind of award, with its [`Limit`] (fixed, cap, rate, minimum, open,
//!   envelope), the [`BasisField`]s an application must state, and a verbatim citation.
//! - [`Provision::check_basis`] turns an application's JSON basis into a typed [`Basis`] or a
//!   [`BasisError`]; [`Provision::evaluate`] applies the limit to one amount and returns the
//!   amount to record or a [`LimitViolation`] whose `code()` is a contract code (DESIGN §7).
//!
//! The crate is pure: no IO (the catalogue and the policy text are embedded with
//! `include_str!`) and no clock (dates arrive as values). Rules that span applications — the
//! firm's annual cap, "once", exclusions, envelopes, budgets — are the ledger's, using the
//! data here.

mod evaluate;
mod load;
mod model;

pub use evaluate::{Basis, BasisError, BasisValue, LimitViolation, ViolationKind};
pub use load::{CatalogueError, BUILTIN_CATALOGUE, POLICY_TEXT_ZH};
pub use model::{BasisField, BasisKind, Catalogue, Limit, Measure, PolicyOptions, Provision};
