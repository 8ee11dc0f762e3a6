//! `export --format 360giving`: approved applications as grants of the 360Giving Data
//! Standard, as its JSON package `{"grants":[…]}`.
//!
//! One grant per application whose status is `approved` now (an approval later revoked is no
//! grant), in submission order. Fields, by the names of the standard's JSON schema
//! (`360-giving-schema.json`):
//! - `id`: `360G-fundledger-` + application id. `360G-` is the standard's prefix for
//!   identifiers not drawn from a register; a publisher registered with 360Giving replaces
//!   `360G-fundledger` with its own prefix.
//! - `title`: the provision's Chinese title and the application id; `description`: who got
//!   what under which document, in Chinese.
//! - `currency` `CNY`; `amountAppliedFor`, `amountAwarded` (the approved amount),
//!   `amountDisbursed` (the sum of confirmed payouts, so it equals the sum of the
//!   `disbursementTransaction` values, as the standard asks).
//! - `awardDate`: the business date (UTC+08:00) of the approval.
//! - `recipientOrganization`: `CN-USCC-<USCC>` (org-id.guide's list for China's unified social
//!   credit code) and the firm's name. `fundingOrganization`: 郑州市财政局 under
//!   [`FUNDER_ID`].
//! - `grantProgramme`: code = provision id, title = measure and provision in Chinese.
//! - `plannedDates` for the grants of a national key laboratory's programme (the lead award
//!   that opened the envelope and every tranche drawn from it): start = the lab's recognition
//!   date, end = the last day of its programme window. Tranches also name the lead award's
//!   grant in `relatedActivity`.
//! - `disbursementTransaction`: one transaction per confirmed payout (the standard's
//!   `Transaction` object: `id` = payout id, `transactionDate` = the bank's value date,
//!   `value`, `currency`, `description` with the bank reference, `provider`, `recipient`),
//!   plus two fields of our own, `fundledgerRecordSeq` and `fundledgerRecordHash`: the seq and
//!   hash of the `payout_confirmed` record, which tie the payment to the hash chain
//!   (`fundledger prove inclusion --seq N`). Ordered-but-unconfirmed and failed payouts are not
//!   disbursements; clawbacks have no field in the standard and are mentioned in the
//!   description.
//!
//! Amounts are JSON numbers, as the standard's schema types them, but never pass through a
//! float: the ledger's decimal text (`1000000.00`) is written verbatim as the number's literal
//! through `serde_json::value::RawValue`. (serde_json's `arbitrary_precision` feature would do
//! the same for parsed values, but it changes `Value` for every crate of the workspace.)

use std::collections::BTreeMap;
use std::io::{self, Write};

use anyhow::{anyhow, Context};
use chrono::NaiveDate;
use fundledger_policy::Limit;
use fundledger_projections::PayoutStatus;
use fundledger_projections::{yuan, Application, ApplicationStatus, Lab, LedgerState, Payout};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::value::RawValue;

/// The currency of every amount in the ledger.
pub const CURRENCY: &str = "CNY";
/// Prefix of grant identifiers.
pub const GRANT_ID_PREFIX: &str = "360G-fundledger-";
/// The funder's identifier. The ledger does not record the bureau's own USCC; a publisher
/// replaces this with `CN-USCC-<the bureau's code>`.
pub const FUNDER_ID: &str = "360G-fundledger-zhengzhou-finance-bureau";
/// The funder: the finance bureau pays every grant (DESIGN §1).
pub const FUNDER_NAME: &str = "郑州市财政局";
/// Prefix of a recipient's identifier (org-id.guide: unified social credit code of China).
pub const RECIPIENT_ID_PREFIX: &str = "CN-USCC-";

/// The 360Giving JSON package.
#[derive(Debug, Serialize)]
pub struct Document {
    pub grants: Vec<Grant>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    pub id: String,
    pub title: String,
    pub description: String,
    pub currency: &'static str,
    pub amount_applied_for: Box<RawValue>,
    pub amount_awarded: Box<RawValue>,
    pub amount_disbursed: Box<RawValue>,
    pub award_date: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub planned_dates: Vec<PlannedDates>,
    pub recipient_organization: Vec<Organization>,
    pub funding_organization: Vec<Organization>,
    pub grant_programme: Vec<GrantProgramme>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related_activity: Vec<String>,
    pub disbursement_transaction: Vec<Transaction>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedDates {
    pub start_date: String,
    pub end_date: String,
}

#[derive(Debug, Serialize)]
pub struct Organization {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Serialize)]
pub struct GrantProgramme {
    pub code: String,
    pub title: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    pub id: String,
    pub transaction_date: String,
    pub value: Box<RawValue>,
    pub currency: &'static str,
    pub description: String,
    pub provider: String,
    pub recipient: String,
    /// Not in the standard: the seq of the `payout_confirmed` record.
    pub fundledger_record_seq: u64,
    /// Not in the standard: the hash of the `payout_confirmed` record.
    pub fundledger_record_hash: String,
}

/// The grants of every approved application, in submission order.
pub fn document(state: &LedgerState) -> anyhow::Result<Document> {
    let mut confirmed: BTreeMap<&str, Vec<&Payout>> = BTreeMap::new();
    for payout in state.payouts.values() {
        if payout.status == PayoutStatus::Confirmed {
            confirmed
                .entry(payout.application_id.as_str())
                .or_default()
                .push(payout);
        }
    }
    for payouts in confirmed.values_mut() {
        payouts.sort_by_key(|payout| payout.settled_seq);
    }
    let mut approved: Vec<&Application> = state
        .applications
        .values()
        .map(|app| app.as_ref())
        .filter(|app| app.status == ApplicationStatus::Approved)
        .collect();
    approved.sort_by_key(|app| app.submitted_seq);
    approved
        .into_iter()
        .map(|app| {
            let payouts = confirmed
                .get(app.application_id.as_str())
                .map(Vec::as_slice)
                .unwrap_or_default();
            grant(state, app, payouts)
                .with_context(|| format!("cannot export application {}", app.application_id))
        })
        .collect::<anyhow::Result<Vec<Grant>>>()
        .map(|grants| Document { grants })
}

/// Writes the document as pretty-printed JSON (UTF-8, no BOM) and a final newline.
pub fn write(document: &Document, writer: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *writer, document)?;
    writer.write_all(b"\n")
}

pub fn grant_id(application_id: &str) -> String {
    format!("{GRANT_ID_PREFIX}{application_id}")
}

fn grant(state: &LedgerState, app: &Application, payouts: &[&Payout]) -> anyhow::Result<Grant> {
    let approved = app
        .approved
        .ok_or_else(|| anyhow!("it is approved but has no approved amount"))?;
    let award_date = app
        .approved_on
        .ok_or_else(|| anyhow!("it is approved but has no approval date"))?;
    let catalogue = state.policy_at(app.policy_seq);
    let provision = catalogue.and_then(|c| c.provision(&app.provision));
    let measure = catalogue.and_then(|c| c.measure(&app.measure));
    let provision_title = provision.map_or(app.provision.as_str(), |p| p.title_zh.as_str());
    let measure_title = measure.map_or("", |m| m.title_zh.as_str());
    let document = catalogue.map_or(String::new(), |c| {
        format!("《{}》（{}）", c.title, c.document)
    });

    let recipient_id = format!("{RECIPIENT_ID_PREFIX}{}", app.firm.uscc);
    let disbursed: Decimal = payouts.iter().map(|payout| payout.amount).sum();
    let transactions = payouts
        .iter()
        .map(|payout| transaction(payout, &recipient_id))
        .collect::<anyhow::Result<Vec<_>>>()?;

    let mut description = format!(
        "{}（统一社会信用代码 {}）依据{}{} {} 获批资助 {} 元（{} 财年，申请编号 {}）",
        app.firm.name,
        app.firm.uscc,
        document,
        measure_title,
        provision_title,
        yuan::format(approved),
        app.fiscal_year,
        app.application_id,
    );
    if !app.clawed_back.is_zero() {
        description.push_str(&format!(
            "；已下达追回 {} 元，已退回 {} 元",
            yuan::format(app.clawed_back),
            yuan::format(app.repaid)
        ));
    }
    description.push('。');

    let (lab, lead) = programme_lab(state, app);
    Ok(Grant {
        id: grant_id(&app.application_id),
        title: format!("{provision_title}（{}）", app.application_id),
        description,
        currency: CURRENCY,
        amount_applied_for: number(app.requested)?,
        amount_awarded: number(approved)?,
        amount_disbursed: number(disbursed)?,
        award_date: date(award_date),
        planned_dates: lab
            .map(|lab| PlannedDates {
                start_date: date(lab.recognition_date),
                end_date: date(lab.window_end),
            })
            .into_iter()
            .collect(),
        recipient_organization: vec![Organization {
            id: recipient_id,
            name: app.firm.name.clone(),
        }],
        funding_organization: vec![Organization {
            id: FUNDER_ID.to_string(),
            name: FUNDER_NAME.to_string(),
        }],
        grant_programme: vec![GrantProgramme {
            code: app.provision.clone(),
            title: format!("{} {measure_title} · {provision_title}", app.measure),
        }],
        related_activity: lead.map(grant_id).into_iter().collect(),
        disbursement_transaction: transactions,
    })
}

fn transaction(payout: &Payout, recipient_id: &str) -> anyhow::Result<Transaction> {
    let (Some(seq), Some(hash)) = (payout.settled_seq, payout.settled_hash) else {
        return Err(anyhow!(
            "payout {} is confirmed but has no settling record",
            payout.payout_id
        ));
    };
    let paid_on = payout
        .value_date
        .or(payout.confirmed_on)
        .ok_or_else(|| anyhow!("payout {} is confirmed but has no date", payout.payout_id))?;
    Ok(Transaction {
        id: payout.payout_id.clone(),
        transaction_date: date(paid_on),
        value: number(payout.amount)?,
        currency: CURRENCY,
        description: format!(
            "拨付 {}，银行流水号 {}",
            payout.payout_id,
            payout.bank_reference.as_deref().unwrap_or("")
        ),
        provider: FUNDER_ID.to_string(),
        recipient: recipient_id.to_string(),
        fundledger_record_seq: seq,
        fundledger_record_hash: hash.to_hex(),
    })
}

/// The lab programme an application belongs to — as the lead award that opened it, or as a
/// tranche drawn from it — and, for a tranche, the lead award's application id.
fn programme_lab<'a>(
    state: &'a LedgerState,
    app: &'a Application,
) -> (Option<&'a Lab>, Option<&'a str>) {
    if let Some(lab) = state.labs.get(&app.application_id) {
        return (Some(lab), None);
    }
    let lab_field = state
        .policy_at(app.policy_seq)
        .and_then(|catalogue| catalogue.provision(&app.provision))
        .and_then(|provision| match &provision.limit {
            Limit::Envelope { lab_field, .. } => Some(lab_field.as_str()),
            _ => None,
        });
    match lab_field
        .and_then(|field| app.basis_text(field))
        .and_then(|lab| state.labs.get(lab))
    {
        Some(lab) => (Some(lab), Some(lab.lab.as_str())),
        None => (None, None),
    }
}

/// An amount as a JSON number whose literal is the ledger's two-decimal text.
fn number(amount: Decimal) -> anyhow::Result<Box<RawValue>> {
    let text = yuan::format(amount);
    RawValue::from_string(text.clone())
        .with_context(|| format!("the amount {text:?} is not a JSON number"))
}

fn date(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_numbers_written_from_the_decimal_text() {
        let cases: &[(Decimal, &str)] = &[
            (Decimal::new(100_000_000, 2), "1000000.00"),
            (Decimal::new(5, 1), "0.50"),
            (
                Decimal::new(123_456_789_012_345_678, 2),
                "1234567890123456.78",
            ),
            (Decimal::ZERO, "0.00"),
        ];
        for (amount, expected) in cases {
            // The JSON holds the literal as it is: no float ever rounds it.
            let json = number(*amount)
                .ok()
                .and_then(|raw| serde_json::to_string(&[raw]).ok());
            assert_eq!(json, Some(format!("[{expected}]")));
        }
    }

    #[test]
    fn an_empty_ledger_has_no_grants() {
        let document = document(&LedgerState::default()).ok();
        let mut out = Vec::new();
        if let Some(document) = &document {
            let _ = write(document, &mut out);
        }
        assert_eq!(
            String::from_utf8(out).unwrap_or_default(),
            "{\n  \"grants\": []\n}\n"
        );
    }
}
