//! SLA management (spec section 5): policies per priority, channel or
//! department; business hours per time zone with holidays; due times stored
//! on the conversation and counted in business time; a sweep that warns and
//! escalates at 80 %, alerts when important conversations wait over 5
//! minutes, and records breaches; compliance and escalation reports.
//!
//! - [`business_time`]: pure calendar arithmetic
//! - [`policy`]: configuration and which rules apply to a conversation
//! - [`clock`]: starting, pausing, resuming and recomputing due times
//! - [`worker`]: the sweep (exactly once per conversation × kind × level,
//!   guarded by a unique index, so every instance may run it)
//! - [`report`]: SLA state, at-risk list, compliance and escalation rates

pub mod business_time;
pub mod clock;
pub mod policy;
pub mod report;
pub mod schedule;
pub mod worker;

use chrono::Duration;

pub use business_time::Calendar;
pub use policy::{
    BusinessHoursInput, BusinessHoursView, Effective, HolidayInput, OpeningInput, Rules,
    SlaPolicyInput,
};
pub use report::{AtRisk, QuarterlyReview, SlaGroupBy, SlaReportFilter, SlaReportRow, SlaState};
pub use worker::SweepReport;

/// Compliance target: 95 % of conversations within their targets.
pub const COMPLIANCE_TARGET: f64 = 0.95;
/// Escalation rate to stay under (the spec says 10–15 %).
pub const ESCALATION_RATE_LIMIT: f64 = 0.15;
/// Important (high/urgent) conversations waiting longer raise an alert.
pub const IMPORTANT_WAIT: Duration = Duration::minutes(5);

/// Whole minutes, rounded up, at least 1.
pub fn whole_minutes(d: Duration) -> i64 {
    ((d.num_seconds() + 59) / 60).max(1)
}

/// Two-letter language of a conversation (`it_IT` → `it`), English by default.
fn lang(language: Option<&str>) -> &'static str {
    let code = language
        .unwrap_or("en")
        .get(..2)
        .unwrap_or("en")
        .to_ascii_lowercase();
    match code.as_str() {
        "it" => "it",
        "fr" => "fr",
        "es" => "es",
        "de" => "de",
        _ => "en",
    }
}

/// The acknowledgement's promise: "We will reply within 10 minutes."
pub fn first_response_target_text(minutes: i64, language: Option<&str>) -> String {
    let one = minutes == 1;
    match lang(language) {
        "it" => format!(
            "Ti risponderemo entro {minutes} {}.",
            if one { "minuto" } else { "minuti" }
        ),
        "fr" => format!(
            "Nous vous répondrons dans les {minutes} {}.",
            if one { "minute" } else { "minutes" }
        ),
        "es" => format!(
            "Te responderemos en menos de {minutes} {}.",
            if one { "minuto" } else { "minutos" }
        ),
        "de" => format!(
            "Wir antworten innerhalb von {minutes} {}.",
            if one { "Minute" } else { "Minuten" }
        ),
        _ => format!(
            "We will reply within {minutes} {}.",
            if one { "minute" } else { "minutes" }
        ),
    }
}

/// Told to the customer on a functional escalation.
pub fn transferred_text(team: &str, language: Option<&str>) -> String {
    match lang(language) {
        "it" => format!("La tua domanda è stata trasferita al nostro team {team}."),
        "fr" => format!("Votre question a été transférée à notre équipe {team}."),
        "es" => format!("Tu pregunta ha sido transferida a nuestro equipo de {team}."),
        "de" => format!("Ihre Frage wurde an unser {team}-Team weitergeleitet."),
        _ => format!("Your question was transferred to our {team} team."),
    }
}

/// Told to the customer on a breach, when the policy says so.
pub fn breach_text(language: Option<&str>) -> String {
    match lang(language) {
        "it" => "Ci scusiamo per l'attesa: un operatore ti risponderà il prima possibile.".into(),
        "fr" => {
            "Nous nous excusons pour l'attente : un conseiller vous répondra au plus vite.".into()
        }
        "es" => "Disculpa la espera: un agente te responderá lo antes posible.".into(),
        "de" => {
            "Entschuldigen Sie die Wartezeit: Ein Mitarbeiter antwortet so schnell wie möglich."
                .into()
        }
        _ => "We are sorry for the wait: an agent will reply as soon as possible.".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_acknowledgement_states_the_target_in_the_customers_language() {
        assert_eq!(
            first_response_target_text(10, None),
            "We will reply within 10 minutes."
        );
        assert_eq!(
            first_response_target_text(10, Some("it_IT")),
            "Ti risponderemo entro 10 minuti."
        );
        assert_eq!(
            transferred_text("Billing", Some("en")),
            "Your question was transferred to our Billing team."
        );
        assert_eq!(whole_minutes(Duration::seconds(241)), 5);
        assert_eq!(whole_minutes(Duration::zero()), 1);
    }
}
