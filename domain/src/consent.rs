//! Consent: STOP-style keywords opt a contact out of automated messages,
//! START opts back in. Matching ignores case, accents and punctuation, and
//! only a message that is the keyword alone counts ("stop" yes, "don't stop" no).

use entity::ConsentState;

const OPT_OUT: [&str; 7] = [
    "stop",
    "arret",
    "arreter",
    "arresta",
    "unsubscribe",
    "stopp",
    "baja",
];
const OPT_IN: [&str; 4] = ["start", "iscriviti", "subscribe", "reprendre"];

/// Lower case, accents folded, letters only.
fn fold(text: &str) -> String {
    deunicode::deunicode(text)
        .chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The consent a message asks for, if it is a consent keyword.
pub fn requested(text: &str) -> Option<ConsentState> {
    let word = fold(text);
    if OPT_OUT.contains(&word.as_str()) {
        Some(ConsentState::OptedOut)
    } else if OPT_IN.contains(&word.as_str()) {
        Some(ConsentState::OptedIn)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_words_in_several_languages_opt_out() {
        for text in [
            "STOP",
            "Stop.",
            "ARRÊT",
            "arrêter",
            "Arresta",
            "unsubscribe",
        ] {
            assert_eq!(requested(text), Some(ConsentState::OptedOut), "{text}");
        }
    }

    #[test]
    fn start_opts_back_in_and_sentences_do_nothing() {
        assert_eq!(requested("start"), Some(ConsentState::OptedIn));
        assert_eq!(requested("please don't stop the delivery"), None);
        assert_eq!(requested(""), None);
    }
}
