//! Loading a catalogue from TOML and validating it.
//!
//! Validation refuses anything the ledger could not apply safely: every message names the
//! measure or provision at fault and says what to change, because the person reading it is
//! an administrator amending the rules, not a Rust programmer.

use std::collections::HashSet;
use std::sync::OnceLock;

use rust_decimal::Decimal;
use thiserror::Error;

use crate::model::{BasisKind, Catalogue, Limit, Provision};

/// The text of the built-in 郑政文〔2024〕62号 catalogue.
pub const BUILTIN_CATALOGUE: &str = include_str!("../catalogue/zhengzhou-2024-62.toml");

/// The policy text the built-in catalogue cites, embedded so citations can be checked.
pub const POLICY_TEXT_ZH: &str = include_str!("../catalogue/zhengzhou-2024-62.zh.txt");

/// Money in the ledger is yuan with at most 2 decimals (fen).
pub(crate) const MONEY_DECIMALS_MAX: u32 = 2;

/// Why a catalogue text was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CatalogueError {
    /// TOML syntax, an unknown or missing field, or a value of the wrong type.
    #[error("catalogue TOML: {0}")]
    Toml(String),
    #[error("duplicate {what} id {id:?}: every {what} id must be unique")]
    DuplicateId { what: &'static str, id: String },
    #[error(
        "provision {provision}: unknown measure {measure:?}; use the id of one of [[measures]]"
    )]
    UnknownMeasure { provision: String, measure: String },
    #[error(
        "provision {provision}: measure {measure} carries no money (carries_money = false); \
         remove the provision or move it to a measure that pays"
    )]
    MeasureCarriesNoMoney { provision: String, measure: String },
    #[error("{subject}: {field} must be positive, got {value}")]
    NotPositive {
        subject: String,
        field: &'static str,
        value: Decimal,
    },
    #[error("{subject}: {field} = {value} has more than 2 decimals; amounts are yuan to the fen")]
    TooManyDecimals {
        subject: String,
        field: &'static str,
        value: Decimal,
    },
    #[error("provision {provision}: rate {rate} must be above 0 and at most 1 (100%); write 20% as \"0.20\"")]
    RateOutOfRange { provision: String, rate: Decimal },
    #[error("provision {provision}: citation is empty; copy the sentence of the policy text it comes from")]
    MissingCitation { provision: String },
    #[error("measure {measure}: responsible_units is empty; copy the 责任单位 of the measure")]
    MissingResponsibleUnits { measure: String },
    #[error(
        "provision {provision}: {role} {field:?} is not among its basis fields; \
         add {{ name = {field:?}, kind = \"{expected}\" }} to basis"
    )]
    BasisFieldMissing {
        provision: String,
        role: &'static str,
        field: String,
        expected: BasisKind,
    },
    #[error("provision {provision}: {role} {field:?} is a basis field of kind {actual}, expected {expected}")]
    BasisFieldKind {
        provision: String,
        role: &'static str,
        field: String,
        actual: BasisKind,
        expected: BasisKind,
    },
    #[error("provision {provision}: envelope opened_by {opened_by:?} is not a provision of this catalogue")]
    UnknownOpener {
        provision: String,
        opened_by: String,
    },
    #[error(
        "provision {provision}: excludes {other:?}, which is not a provision of this catalogue"
    )]
    UnknownExcluded { provision: String, other: String },
    #[error("provision {provision} excludes {other} but {other} does not exclude {provision}; list the exclusion on both")]
    AsymmetricExclusion { provision: String, other: String },
    #[error("valid_until {valid_until} is before valid_from {valid_from}")]
    WindowReversed {
        valid_from: chrono::NaiveDate,
        valid_until: chrono::NaiveDate,
    },
    /// Any other inconsistency; the message says what and where.
    #[error("{subject}: {problem}")]
    Invalid { subject: String, problem: String },
}

impl Catalogue {
    /// The built-in 郑政文〔2024〕62号 catalogue ([`BUILTIN_CATALOGUE`]), parsed once.
    pub fn builtin() -> Catalogue {
        static BUILTIN: OnceLock<Catalogue> = OnceLock::new();
        BUILTIN
            .get_or_init(|| {
                // The input is a compile-time constant and the test `builtin_loads` parses and
                // validates it, so this cannot fail in any build whose tests pass.
                Catalogue::from_toml(BUILTIN_CATALOGUE).expect("the built-in catalogue is valid")
            })
            .clone()
    }

    /// Parses and validates a catalogue.
    pub fn from_toml(text: &str) -> Result<Catalogue, CatalogueError> {
        let catalogue: Catalogue =
            toml::from_str(text).map_err(|e| CatalogueError::Toml(e.to_string()))?;
        catalogue.validate()?;
        Ok(catalogue)
    }

    /// Checks everything serde cannot: uniqueness, references between entries, amounts, rates.
    pub fn validate(&self) -> Result<(), CatalogueError> {
        let invalid = |subject: &str, problem: String| CatalogueError::Invalid {
            subject: subject.to_string(),
            problem,
        };
        for (field, value) in [
            ("version", &self.version),
            ("document", &self.document),
            ("title", &self.title),
        ] {
            if value.trim().is_empty() {
                return Err(invalid("catalogue", format!("{field} is empty")));
            }
        }
        if self.valid_until < self.valid_from {
            return Err(CatalogueError::WindowReversed {
                valid_from: self.valid_from,
                valid_until: self.valid_until,
            });
        }

        let mut measure_ids = HashSet::new();
        for measure in &self.measures {
            if !measure_ids.insert(measure.id.as_str()) {
                return Err(CatalogueError::DuplicateId {
                    what: "measure",
                    id: measure.id.clone(),
                });
            }
            if measure.id != format!("M{}", measure.number) {
                return Err(invalid(
                    &format!("measure {}", measure.id),
                    format!(
                        "id must be \"M{}\" to match number = {}",
                        measure.number, measure.number
                    ),
                ));
            }
            if measure.responsible_units.is_empty() {
                return Err(CatalogueError::MissingResponsibleUnits {
                    measure: measure.id.clone(),
                });
            }
            // Units are matched against reviewers' `unit`, so a blank one could never match.
            if measure
                .responsible_units
                .iter()
                .any(|u| u.trim().is_empty())
            {
                return Err(invalid(
                    &format!("measure {}", measure.id),
                    "responsible_units contains an empty unit; remove it".to_string(),
                ));
            }
            if measure.citation.trim().is_empty() {
                return Err(invalid(
                    &format!("measure {}", measure.id),
                    "citation is empty; copy the 责任单位 sentence of the measure".to_string(),
                ));
            }
        }

        let mut provision_ids = HashSet::new();
        for provision in &self.provisions {
            if !provision_ids.insert(provision.id.as_str()) {
                return Err(CatalogueError::DuplicateId {
                    what: "provision",
                    id: provision.id.clone(),
                });
            }
        }

        for provision in &self.provisions {
            self.validate_provision(provision, &provision_ids)?;
        }

        for measure in &self.measures {
            let paid = self.provisions.iter().any(|p| p.measure == measure.id);
            if measure.carries_money && !paid {
                return Err(invalid(
                    &format!("measure {}", measure.id),
                    "carries_money = true but no provision names it; add one or set carries_money = false"
                        .to_string(),
                ));
            }
        }
        Ok(())
    }

    fn validate_provision(
        &self,
        provision: &Provision,
        provision_ids: &HashSet<&str>,
    ) -> Result<(), CatalogueError> {
        let id = provision.id.as_str();
        let subject = format!("provision {id}");
        let invalid = |problem: String| CatalogueError::Invalid {
            subject: subject.clone(),
            problem,
        };

        let Some(measure) = self.measure(&provision.measure) else {
            return Err(CatalogueError::UnknownMeasure {
                provision: id.to_string(),
                measure: provision.measure.clone(),
            });
        };
        if !measure.carries_money {
            return Err(CatalogueError::MeasureCarriesNoMoney {
                provision: id.to_string(),
                measure: measure.id.clone(),
            });
        }
        // The measure prefix keeps ids readable in logs and makes `M2.*` grep-able.
        if !id.starts_with(&format!("{}.", measure.id)) || id.len() <= measure.id.len() + 1 {
            return Err(invalid(format!(
                "id must start with \"{}.\" (its measure)",
                measure.id
            )));
        }
        if provision.citation.trim().is_empty() {
            return Err(CatalogueError::MissingCitation {
                provision: id.to_string(),
            });
        }
        if provision.title_zh.trim().is_empty() || provision.title_en.trim().is_empty() {
            return Err(invalid(
                "title_zh and title_en must not be empty".to_string(),
            ));
        }

        let mut names = HashSet::new();
        for field in &provision.basis {
            if field.name.trim().is_empty() {
                return Err(invalid("a basis field has an empty name".to_string()));
            }
            if !names.insert(field.name.as_str()) {
                return Err(invalid(format!(
                    "basis field {:?} is declared twice",
                    field.name
                )));
            }
        }

        let money = |field: &'static str, value: Decimal| check_money(&subject, field, value);
        match &provision.limit {
            Limit::Fixed { amount } | Limit::Cap { amount } | Limit::Minimum { amount } => {
                money("amount", *amount)?;
            }
            Limit::Rate {
                rate,
                base_field,
                cap,
            } => {
                if *rate <= Decimal::ZERO || *rate > Decimal::ONE {
                    return Err(CatalogueError::RateOutOfRange {
                        provision: id.to_string(),
                        rate: *rate,
                    });
                }
                if let Some(cap) = cap {
                    money("cap", *cap)?;
                }
                self.expect_basis(provision, "rate base_field", base_field, BasisKind::Amount)?;
            }
            Limit::Open => {}
            Limit::Envelope {
                total,
                years,
                opened_by,
                lab_field,
            } => {
                money("total", *total)?;
                if *years == 0 {
                    return Err(invalid("envelope years must be at least 1".to_string()));
                }
                self.expect_basis(
                    provision,
                    "envelope lab_field",
                    lab_field,
                    BasisKind::ApplicationId,
                )?;
                let Some(opener) = self.provision(opened_by) else {
                    return Err(CatalogueError::UnknownOpener {
                        provision: id.to_string(),
                        opened_by: opened_by.clone(),
                    });
                };
                if opener.id == provision.id || matches!(opener.limit, Limit::Envelope { .. }) {
                    return Err(invalid(format!(
                        "envelope opened_by {opened_by:?} must be an award, not an envelope"
                    )));
                }
                // The programme window is counted from the opener's recognition date.
                self.expect_basis(
                    opener,
                    "recognition date",
                    "recognition_date",
                    BasisKind::Date,
                )?;
            }
        }

        if let Some(cap) = provision.firm_annual_cap {
            money("firm_annual_cap", cap)?;
        }
        if let Some(flag) = &provision.excluded_if {
            self.expect_basis(provision, "excluded_if", flag, BasisKind::Bool)?;
        }
        if let Some(flag) = &provision.priority_if {
            self.expect_basis(provision, "priority_if", flag, BasisKind::Bool)?;
        }
        if let Some(field) = &provision.cap_per {
            if !matches!(provision.limit, Limit::Cap { .. }) {
                return Err(invalid(
                    "cap_per only applies to a limit of kind \"cap\"".to_string(),
                ));
            }
            let Some(declared) = provision.basis_field(field) else {
                return Err(CatalogueError::BasisFieldMissing {
                    provision: id.to_string(),
                    role: "cap_per",
                    field: field.clone(),
                    expected: BasisKind::Text,
                });
            };
            if !declared.required {
                return Err(invalid(format!("cap_per field {field:?} must be required")));
            }
        }
        if let Some(role) = &provision.requires_endorsement_by {
            if role.trim().is_empty() {
                return Err(invalid(
                    "requires_endorsement_by is empty; name a role or remove it".to_string(),
                ));
            }
        }
        for other in &provision.excludes {
            if !provision_ids.contains(other.as_str()) {
                return Err(CatalogueError::UnknownExcluded {
                    provision: id.to_string(),
                    other: other.clone(),
                });
            }
            if other == id {
                return Err(invalid("a provision cannot exclude itself".to_string()));
            }
            let back = self
                .provision(other)
                .is_some_and(|o| o.excludes.iter().any(|x| x == id));
            if !back {
                return Err(CatalogueError::AsymmetricExclusion {
                    provision: id.to_string(),
                    other: other.clone(),
                });
            }
        }
        Ok(())
    }

    /// `field` must be a required basis field of `provision` with kind `expected`.
    fn expect_basis(
        &self,
        provision: &Provision,
        role: &'static str,
        field: &str,
        expected: BasisKind,
    ) -> Result<(), CatalogueError> {
        let Some(declared) = provision.basis_field(field) else {
            return Err(CatalogueError::BasisFieldMissing {
                provision: provision.id.clone(),
                role,
                field: field.to_string(),
                expected,
            });
        };
        if declared.kind != expected {
            return Err(CatalogueError::BasisFieldKind {
                provision: provision.id.clone(),
                role,
                field: field.to_string(),
                actual: declared.kind,
                expected,
            });
        }
        // A limit that reads an amount or a lab must be able to rely on it; flags may be optional.
        if expected != BasisKind::Bool && !declared.required {
            return Err(CatalogueError::Invalid {
                subject: format!("provision {}", provision.id),
                problem: format!("{role} {field:?} must be a required basis field"),
            });
        }
        Ok(())
    }
}

fn check_money(subject: &str, field: &'static str, value: Decimal) -> Result<(), CatalogueError> {
    if value <= Decimal::ZERO {
        return Err(CatalogueError::NotPositive {
            subject: subject.to_string(),
            field,
            value,
        });
    }
    if value.scale() > MONEY_DECIMALS_MAX {
        return Err(CatalogueError::TooManyDecimals {
            subject: subject.to_string(),
            field,
            value,
        });
    }
    Ok(())
}
