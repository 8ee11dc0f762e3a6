//! The catalogue's data model, deserialized from TOML (see `catalogue/zhengzhou-2024-62.toml`).
//!
//! The types are plain data; `load` validates them and `evaluate` applies a [`Limit`].
//! Money and rates are [`Decimal`], written in the file as strings (`"5000000"`, `"0.20"`)
//! so that no float ever stands between the policy text and the ledger.

use chrono::{Datelike, Months, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A whole rules catalogue: one policy document, its measures and the provisions that pay money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    /// Identifies this edition of the rules, e.g. `"62号-2024-05-22-v1"`; amendments get a new one.
    pub version: String,
    /// The document number, `"郑政文〔2024〕62号"`.
    pub document: String,
    pub title: String,
    #[serde(with = "date_str")]
    pub published_on: NaiveDate,
    /// First day applications may be submitted (inclusive).
    #[serde(with = "date_str")]
    pub valid_from: NaiveDate,
    /// Last day applications may be submitted (inclusive).
    #[serde(with = "date_str")]
    pub valid_until: NaiveDate,
    #[serde(default)]
    pub options: PolicyOptions,
    pub measures: Vec<Measure>,
    pub provisions: Vec<Provision>,
}

/// Open policy questions the text leaves undecided. Both default to `false` (the cautious reading).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyOptions {
    /// May a firm that holds `M8.potential_unicorn` also receive `M8.unicorn` (and vice versa)?
    /// `false`: the two exclude each other (see [`Provision::excludes`]).
    #[serde(default)]
    pub stack_unicorn_on_potential_unicorn: bool,
    /// Whether provincial and city money co-fund the same award. Recorded only; no rule reads it.
    #[serde(default)]
    pub province_city_cofunding: bool,
}

/// One numbered measure (条) of the policy, with its 责任单位.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measure {
    /// `"M1"` … `"M10"`; always `"M{number}"`.
    pub id: String,
    pub number: u8,
    /// The measure's heading, e.g. `"提高算力使用效率"`.
    pub title_zh: String,
    /// Measures 1 and 3 only organise work; no provision may hang off them.
    pub carries_money: bool,
    /// The 责任单位 exactly as written, split on `、` and `,`/`，`.
    /// Defaulted so that an omission is reported by validation, naming the measure.
    #[serde(default)]
    pub responsible_units: Vec<String>,
    /// The whole 责任单位 parenthesis, verbatim from the policy text.
    #[serde(default)]
    pub citation: String,
}

/// One kind of award a firm can apply for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provision {
    /// `"{measure}.{name}"`, e.g. `"M2.compute_voucher"`.
    pub id: String,
    /// The id of the [`Measure`] this provision belongs to.
    pub measure: String,
    pub title_zh: String,
    pub title_en: String,
    pub limit: Limit,
    /// At most one award per firm per provision, ever (the ledger enforces it).
    pub once: bool,
    /// A role that must endorse the application before approval (`"government"` for
    /// `M4.case_by_case`).
    #[serde(default)]
    pub requires_endorsement_by: Option<String>,
    /// Per firm per fiscal year, the sum of claimed (submitted, not rejected or withdrawn)
    /// amounts may not exceed this (M2: 1,000,000). The ledger enforces it.
    #[serde(default, with = "opt_decimal_str")]
    pub firm_annual_cap: Option<Decimal>,
    /// A bool basis field which, when true, makes the application ineligible
    /// (M2: `self_built`, 自建自用除外). Reported as `excluded_self_built`.
    #[serde(default)]
    pub excluded_if: Option<String>,
    /// A bool basis field which, when true, puts the application first in the review queue
    /// (M2: `provincial_voucher`, 优先支持获省算力券补助的企业).
    #[serde(default)]
    pub priority_if: Option<String>,
    /// A basis field whose value groups applications under one [`Limit::Cap`]: the cap bounds
    /// the sum over all applications sharing that value (M5 `scenario_id`, M10 `event_name`).
    #[serde(default)]
    pub cap_per: Option<String>,
    /// Provisions a firm may not hold together with this one. Always listed on both sides.
    /// The unicorn pair is lifted by [`PolicyOptions::stack_unicorn_on_potential_unicorn`];
    /// use [`Catalogue::excluded_with`] to get the list with options applied.
    #[serde(default)]
    pub excludes: Vec<String>,
    /// The facts an application must state, checked by [`Provision::check_basis`].
    pub basis: Vec<BasisField>,
    /// The sentence (or clause) of the policy text this provision comes from, verbatim.
    /// Defaulted so that an omission is reported by validation, naming the provision.
    #[serde(default)]
    pub citation: String,
}

/// How much a single application may be awarded. TOML: `kind = "fixed" | "cap" | "rate" |
/// "minimum" | "open" | "envelope"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Limit {
    /// Approved at exactly this amount.
    Fixed {
        #[serde(with = "decimal_str")]
        amount: Decimal,
    },
    /// At most this amount.
    Cap {
        #[serde(with = "decimal_str")]
        amount: Decimal,
    },
    /// At most `rate × basis[base_field]`, and at most `cap` when given.
    Rate {
        #[serde(with = "decimal_str")]
        rate: Decimal,
        base_field: String,
        #[serde(default, with = "opt_decimal_str")]
        cap: Option<Decimal>,
    },
    /// At least this amount (M4.major_project: 不低于1000万元).
    Minimum {
        #[serde(with = "decimal_str")]
        amount: Decimal,
    },
    /// Any positive amount (M4.case_by_case, 一事一议).
    Open,
    /// Tranches drawn from a multi-year envelope: the approved tranches of one lab sum to at
    /// most `total`, within `years` of the `recognition_date` of the approved `opened_by`
    /// application named by basis field `lab_field`. The sum and window are the ledger's checks.
    Envelope {
        #[serde(with = "decimal_str")]
        total: Decimal,
        years: u32,
        opened_by: String,
        lab_field: String,
    },
}

impl Limit {
    /// The `kind` tag as written in TOML.
    pub fn kind(&self) -> &'static str {
        match self {
            Limit::Fixed { .. } => "fixed",
            Limit::Cap { .. } => "cap",
            Limit::Rate { .. } => "rate",
            Limit::Minimum { .. } => "minimum",
            Limit::Open => "open",
            Limit::Envelope { .. } => "envelope",
        }
    }

    /// For an envelope opened on `opened_on` (the lab's recognition date), the last day
    /// (inclusive) on which a tranche may be dated: `opened_on + years` (calendar years, a
    /// 29 February clamped to 28 February) minus one day, the same way 2024-05-22 + 3 years
    /// gives the policy's last day 2027-05-21. `None` for other limits or on date overflow.
    pub fn window_end(&self, opened_on: NaiveDate) -> Option<NaiveDate> {
        match self {
            Limit::Envelope { years, .. } => last_day_of_years(opened_on, *years),
            _ => None,
        }
    }
}

/// The last day (inclusive) of a period of `years` calendar years starting on `start`.
pub(crate) fn last_day_of_years(start: NaiveDate, years: u32) -> Option<NaiveDate> {
    let months = years.checked_mul(12)?;
    let end_exclusive = start.checked_add_months(Months::new(months))?;
    // Keep the arithmetic honest: adding whole years never moves the month.
    debug_assert_eq!(end_exclusive.month(), start.month());
    end_exclusive.pred_opt()
}

/// One fact an application states, e.g. `contract_amount` for the compute voucher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasisField {
    pub name: String,
    pub kind: BasisKind,
    /// Optional fields may be omitted; an omitted optional `bool` reads as `false`.
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

/// The JSON shape of a basis field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BasisKind {
    /// A non-empty string.
    Text,
    /// A JSON bool.
    Bool,
    /// A `"YYYY-MM-DD"` string.
    Date,
    /// A decimal string in yuan, > 0, at most 2 decimals.
    Amount,
    /// A non-empty string naming another application.
    ApplicationId,
}

impl BasisKind {
    /// The name as written in TOML.
    pub fn as_str(self) -> &'static str {
        match self {
            BasisKind::Text => "text",
            BasisKind::Bool => "bool",
            BasisKind::Date => "date",
            BasisKind::Amount => "amount",
            BasisKind::ApplicationId => "application_id",
        }
    }
}

impl std::fmt::Display for BasisKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Catalogue {
    /// The provision with this id.
    pub fn provision(&self, id: &str) -> Option<&Provision> {
        self.provisions.iter().find(|p| p.id == id)
    }

    /// The measure with this id (`"M1"` … `"M10"`).
    pub fn measure(&self, id: &str) -> Option<&Measure> {
        self.measures.iter().find(|m| m.id == id)
    }

    /// The 责任单位 of the measure a provision belongs to; empty for an unknown provision.
    pub fn responsible_units(&self, provision_id: &str) -> &[String] {
        self.provision(provision_id)
            .and_then(|p| self.measure(&p.measure))
            .map_or(&[], |m| m.responsible_units.as_slice())
    }

    /// Whether an application submitted on `date` falls within the policy's validity,
    /// `valid_from ..= valid_until`.
    pub fn in_window(&self, date: NaiveDate) -> bool {
        self.valid_from <= date && date <= self.valid_until
    }

    /// The provisions a firm holding `provision_id` may not also hold, with the options
    /// applied: when `stack_unicorn_on_potential_unicorn` is set, the
    /// `M8.unicorn` ↔ `M8.potential_unicorn` exclusion is lifted.
    pub fn excluded_with(&self, provision_id: &str) -> Vec<&str> {
        let Some(provision) = self.provision(provision_id) else {
            return Vec::new();
        };
        provision
            .excludes
            .iter()
            .map(String::as_str)
            .filter(|other| {
                !(self.options.stack_unicorn_on_potential_unicorn
                    && is_unicorn_pair(provision_id, other))
            })
            .collect()
    }
}

pub(crate) const UNICORN: &str = "M8.unicorn";
pub(crate) const POTENTIAL_UNICORN: &str = "M8.potential_unicorn";

fn is_unicorn_pair(a: &str, b: &str) -> bool {
    (a == UNICORN && b == POTENTIAL_UNICORN) || (a == POTENTIAL_UNICORN && b == UNICORN)
}

impl Provision {
    /// The amount of a [`Limit::Fixed`] award, which the applicant may leave out.
    pub fn fixed_amount(&self) -> Option<Decimal> {
        match self.limit {
            Limit::Fixed { amount } => Some(amount),
            _ => None,
        }
    }

    /// The declared basis field with this name.
    pub fn basis_field(&self, name: &str) -> Option<&BasisField> {
        self.basis.iter().find(|f| f.name == name)
    }
}

/// Parses a plain decimal: optional `-`, digits, optionally `.` and digits. No `+`, exponent,
/// underscore or whitespace, which `Decimal::from_str` would otherwise let through; a sign is
/// accepted so that validation can name the provision with a negative amount.
pub(crate) fn parse_plain_decimal(text: &str) -> Option<Decimal> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = match digits.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (digits, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || fraction.is_some_and(|f| !all_digits(f)) {
        return None;
    }
    text.parse::<Decimal>().ok()
}

/// Decimals as strings in both directions; numbers (and so floats) are refused.
mod decimal_str {
    use rust_decimal::Decimal;
    use serde::{de, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse_plain_decimal(&text).ok_or_else(|| {
            de::Error::custom(format!(
                "{text:?} is not a plain decimal string (write e.g. \"5000000\" or \"0.20\")"
            ))
        })
    }
}

mod opt_decimal_str {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        value: &Option<Decimal>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => serializer.collect_str(value),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Decimal>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped(#[serde(with = "super::decimal_str")] Decimal);
        Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|Wrapped(d)| d))
    }
}

/// Dates as `"YYYY-MM-DD"` when serialized; when deserialized, either such a string (JSON) or a
/// TOML local date literal (`published_on = 2024-05-22`).
mod date_str {
    use chrono::NaiveDate;
    use serde::{de, Deserialize, Deserializer, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer>(value: &NaiveDate, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&value.format("%Y-%m-%d"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveDate, D::Error> {
        deserializer.deserialize_any(DateVisitor)
    }

    struct DateVisitor;

    impl DateVisitor {
        fn parse<E: de::Error>(text: &str) -> Result<NaiveDate, E> {
            super::parse_iso_date(text).ok_or_else(|| {
                E::custom(format!(
                    "{text:?} is not a date; write YYYY-MM-DD, e.g. 2024-05-22"
                ))
            })
        }
    }

    impl<'de> de::Visitor<'de> for DateVisitor {
        type Value = NaiveDate;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a date YYYY-MM-DD")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<NaiveDate, E> {
            Self::parse(text)
        }

        // TOML datetimes arrive as a one-entry map; toml's own `Datetime` knows how to read it.
        fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<NaiveDate, A::Error> {
            let datetime =
                toml::value::Datetime::deserialize(de::value::MapAccessDeserializer::new(map))?;
            match (datetime.date, datetime.time, datetime.offset) {
                (Some(_), None, None) => Self::parse(&datetime.to_string()),
                _ => Err(de::Error::custom(format!(
                    "{datetime} is not a plain date; write YYYY-MM-DD without a time"
                ))),
            }
        }
    }
}

/// Parses exactly `YYYY-MM-DD` (chrono alone would also take `2024-5-2`).
pub(crate) fn parse_iso_date(text: &str) -> Option<NaiveDate> {
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}
