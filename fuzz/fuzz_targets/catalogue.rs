//! `Catalogue::from_toml` (crates/policy) on any text, as `register_policy` hands it over.
//!
//! Properties, beyond "never panics":
//! - a catalogue that loads is valid, and written back as TOML it loads to the same catalogue
//!   (nothing the loader accepted is lost or changed by serialising it);
//! - every provision of a loaded catalogue can be evaluated: checking an empty or a filled-in
//!   basis and applying the limit to a few amounts answers Ok or a violation, never a panic
//!   (an overflow in a rate or a cap would be one), and a lab window is computed from any
//!   opening date.
#![no_main]

use chrono::NaiveDate;
use fundledger_policy::{BasisKind, Catalogue, Provision};
use libfuzzer_sys::fuzz_target;
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(catalogue) = Catalogue::from_toml(text) else {
        return;
    };
    catalogue
        .validate()
        .expect("a catalogue that loaded validates again");

    let written = toml::to_string(&catalogue).expect("a loaded catalogue serialises to TOML");
    let reloaded = Catalogue::from_toml(&written).unwrap_or_else(|error| {
        panic!("the catalogue written back does not load: {error}\n{written}")
    });
    assert_eq!(
        reloaded, catalogue,
        "a TOML round trip changed the catalogue"
    );

    let amounts = [
        None,
        Some(Decimal::new(1, 2)),
        Some(Decimal::new(100_000_000, 2)),
        Some(Decimal::new(99_999_999_999_999, 2)),
    ];
    for provision in &catalogue.provisions {
        let _ = catalogue.responsible_units(&provision.id);
        let _ = catalogue.excluded_with(&provision.id);
        let _ = provision.fixed_amount();
        for opened_on in [
            NaiveDate::MIN,
            date(2024, 2, 29),
            date(2024, 5, 22),
            NaiveDate::MAX,
        ] {
            let _ = provision.limit.window_end(opened_on);
        }
        for basis in [Map::new(), filled_basis(provision)] {
            let Ok(basis) = provision.check_basis(&basis) else {
                continue;
            };
            for amount in amounts {
                let _ = provision.evaluate(amount, &basis);
            }
        }
    }
});

/// A basis with every declared field filled in with a plausible value of its kind.
fn filled_basis(provision: &Provision) -> Map<String, Value> {
    provision
        .basis
        .iter()
        .map(|field| {
            let value = match field.kind {
                BasisKind::Bool => json!(false),
                BasisKind::Amount => json!("99999999999.99"),
                BasisKind::Date => json!("2024-06-01"),
                BasisKind::Text | BasisKind::ApplicationId => json!("x"),
            };
            (field.name.clone(), value)
        })
        .collect()
}

fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).expect("a real date")
}
