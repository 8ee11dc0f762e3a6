//! `fundledger query [--store URL] budgets|firms|labs|applications|payments|queue|clawbacks`:
//! a projection as a JSON array (DESIGN §8), folded from the log without starting a writer.

use clap::{Args, ValueEnum};
use fundledger_ledger::catch_up;
use fundledger_projections::LedgerState;

use crate::store_args::{open_existing, StoreArgs};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum View {
    Budgets,
    Firms,
    Labs,
    Applications,
    Payments,
    Queue,
    Clawbacks,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Which projection to print
    #[arg(value_enum)]
    pub view: View,
}

pub async fn run(args: QueryArgs) -> anyhow::Result<()> {
    let store = open_existing(&args.store.store).await?;
    let mut state = LedgerState::default();
    catch_up(store.as_ref(), &mut state).await?;
    println!(
        "{}",
        serde_json::to_string_pretty(&rows(&state, args.view))?
    );
    Ok(())
}

/// The rows of one view as JSON.
pub fn rows(state: &LedgerState, view: View) -> serde_json::Value {
    let rows = match view {
        View::Budgets => serde_json::to_value(state.budget_rows()),
        View::Firms => serde_json::to_value(state.firm_rows()),
        View::Labs => serde_json::to_value(state.lab_rows()),
        View::Applications => serde_json::to_value(state.application_rows()),
        View::Payments => serde_json::to_value(state.payment_rows()),
        View::Queue => serde_json::to_value(state.queue_rows()),
        View::Clawbacks => serde_json::to_value(state.clawback_rows()),
    };
    rows.unwrap_or_default()
}
