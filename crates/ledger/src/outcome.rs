//! The outcome object every command gets (DESIGN §7).

use serde::{Deserialize, Serialize};

use crate::code::Code;

/// `{"command_id","outcome":"accepted"|"rejected","code":null|"<code>","message","seqs":[…]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// `null` only when the command's id could not be read.
    pub command_id: Option<String>,
    pub outcome: String,
    pub code: Option<String>,
    pub message: String,
    pub seqs: Vec<u64>,
}

impl Outcome {
    pub fn accepted(command_id: &str, event_types: &[&str], seqs: Vec<u64>) -> Outcome {
        let recorded: Vec<String> = event_types
            .iter()
            .zip(&seqs)
            .map(|(kind, seq)| format!("{kind} at seq {seq}"))
            .collect();
        Outcome {
            command_id: Some(command_id.to_string()),
            outcome: "accepted".to_string(),
            code: None,
            message: format!("accepted: {}", recorded.join(", ")),
            seqs,
        }
    }

    pub fn rejected(
        command_id: Option<&str>,
        code: Code,
        message: impl Into<String>,
        seqs: Vec<u64>,
    ) -> Outcome {
        Outcome {
            command_id: command_id.map(str::to_string),
            outcome: "rejected".to_string(),
            code: Some(code.as_str().to_string()),
            message: message.into(),
            seqs,
        }
    }

    pub fn is_accepted(&self) -> bool {
        self.outcome == "accepted"
    }

    pub fn code(&self) -> Option<Code> {
        self.code.as_deref().and_then(Code::parse)
    }

    /// 200 when accepted, else the status of the code.
    pub fn http_status(&self) -> u16 {
        match self.code() {
            None if self.is_accepted() => 200,
            None => 500,
            Some(code) => code.http_status(),
        }
    }
}
