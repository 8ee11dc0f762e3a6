//! Amounts in yuan as strings with exactly two decimals ("1000000.00"), for rows.

use rust_decimal::Decimal;
use serde::Serializer;

/// `amount` with two decimals.
pub fn format(amount: Decimal) -> String {
    let mut rounded = amount.round_dp(2);
    rounded.rescale(2);
    rounded.to_string()
}

pub fn serialize<S: Serializer>(amount: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format(*amount))
}

pub mod option {
    use rust_decimal::Decimal;
    use serde::Serializer;

    pub fn serialize<S: Serializer>(
        amount: &Option<Decimal>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match amount {
            Some(amount) => serializer.serialize_str(&super::format(*amount)),
            None => serializer.serialize_none(),
        }
    }
}
