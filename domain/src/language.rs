//! Language detection per conversation, for choosing reply variants, among
//! the languages the desk serves: Italian, French, English, Spanish,
//! Portuguese and German.
//!
//! `whatlang` (trigram and alphabet models), restricted to those languages,
//! decides when it is sure. Chat messages are short, and on a few words
//! statistics guess wildly ("Quand arrive mon colis ?" comes out English,
//! "ciao" Portuguese), so its less confident answers are checked against the
//! text's frequent words (function words, greetings, thanks), which also
//! decide when whatlang cannot. Texts that tell nothing ("ok") give no answer
//! rather than a wrong one. The conversation keeps the first language
//! detected.

use whatlang::{Detector, Lang};

use crate::keywords::Words;

/// The languages detected, as the codes conversations and rules store.
pub const SUPPORTED: [&str; 6] = ["it", "fr", "en", "es", "pt", "de"];

/// Up to this many words a text is short: one telling word is enough.
const SHORT_WORDS: usize = 3;
/// whatlang's own threshold for a reliable answer: taken as it is.
const RELIABLE: f64 = 0.9;
/// A less confident answer is taken unless the text's words point elsewhere.
const PLAUSIBLE: f64 = 0.5;

/// Frequent words of chat messages (accents folded): function words,
/// greetings, thanks and the desk's usual nouns. A word of several languages
/// ("de", "non") counts for each.
const FREQUENT_WORDS: &[(&str, &[&str])] = &[
    (
        "it",
        &[
            "il",
            "lo",
            "gli",
            "di",
            "del",
            "della",
            "un",
            "una",
            "e",
            "che",
            "non",
            "per",
            "sono",
            "mio",
            "mia",
            "ciao",
            "buongiorno",
            "buonasera",
            "grazie",
            "prego",
            "salve",
            "con",
            "come",
            "dove",
            "vorrei",
            "ho",
            "ordine",
            "pacco",
            "quando",
            "si",
            "anche",
            "questo",
            "perche",
            "nel",
            "alla",
            "arrivederci",
            "aiuto",
            "spedizione",
            "quanto",
        ],
    ),
    (
        "fr",
        &[
            "le", "la", "les", "de", "des", "du", "un", "une", "et", "est", "je", "vous", "pour",
            "pas", "mon", "ma", "mes", "bonjour", "bonsoir", "merci", "avec", "sur", "ou", "au",
            "aux", "ce", "qui", "que", "suis", "avez", "votre", "commande", "colis", "salut",
            "oui", "non", "svp", "quand", "j", "c", "n", "d", "l", "qu", "aide",
        ],
    ),
    (
        "en",
        &[
            "the", "is", "and", "to", "of", "my", "i", "you", "it", "for", "hello", "hi", "hey",
            "thanks", "thank", "please", "where", "what", "when", "with", "have", "order", "can",
            "would", "this", "that", "not", "are", "was", "how", "do", "yes", "help", "parcel",
        ],
    ),
    (
        "es",
        &[
            "el", "los", "las", "de", "del", "un", "una", "y", "es", "que", "no", "por", "para",
            "mi", "hola", "gracias", "con", "donde", "pedido", "quiero", "tengo", "cuando", "esta",
            "como", "buenos", "buenas", "dias", "muy", "pero", "usted", "ayuda", "paquete",
            "cuanto", "llega",
        ],
    ),
    (
        "pt",
        &[
            "o",
            "os",
            "as",
            "de",
            "do",
            "da",
            "um",
            "uma",
            "e",
            "que",
            "nao",
            "para",
            "meu",
            "minha",
            "ola",
            "oi",
            "obrigado",
            "obrigada",
            "com",
            "onde",
            "pedido",
            "quero",
            "tenho",
            "quando",
            "esta",
            "bom",
            "dia",
            "voce",
            "muito",
            "encomenda",
            "sim",
            "ajuda",
            "chega",
        ],
    ),
    (
        "de",
        &[
            "der",
            "die",
            "das",
            "und",
            "ist",
            "ich",
            "nicht",
            "mein",
            "meine",
            "ein",
            "eine",
            "mit",
            "fur",
            "sie",
            "wo",
            "wann",
            "wie",
            "hallo",
            "danke",
            "bitte",
            "guten",
            "tag",
            "morgen",
            "ja",
            "nein",
            "bestellung",
            "paket",
            "hilfe",
            "moin",
            "servus",
            "haben",
        ],
    ),
];

/// The language of a text, as one of [`SUPPORTED`], when it can be told:
/// whatlang's answer when it is reliable, or plausible and not contradicted
/// by the text's frequent words; else the language most of those words
/// belong to (two words at least, one in a short text). `None` when nothing
/// tells ("ok", "5", a tie).
pub fn detect(text: &str) -> Option<&'static str> {
    let words = Words::of(text);
    let votes = votes(&words);
    let leader = leader(&votes);
    if let Some(info) = detector().detect(text)
        && let Some(lang) = code(info.lang())
    {
        let most = leader.map_or(0, |(_, n)| n);
        let agreed = votes_for(&votes, lang) >= most;
        if info.confidence() > RELIABLE || (info.confidence() >= PLAUSIBLE && agreed) {
            return Some(lang);
        }
    }
    let needed = if words.as_slice().len() <= SHORT_WORDS {
        1
    } else {
        2
    };
    leader.filter(|(_, n)| *n >= needed).map(|(lang, _)| lang)
}

/// How many of the text's words are frequent in each language.
fn votes(words: &Words) -> Vec<(&'static str, usize)> {
    FREQUENT_WORDS
        .iter()
        .map(|(lang, list)| {
            let n = words
                .as_slice()
                .iter()
                .filter(|w| list.contains(&w.as_str()))
                .count();
            (*lang, n)
        })
        .collect()
}

fn votes_for(votes: &[(&'static str, usize)], lang: &str) -> usize {
    votes.iter().find(|(l, _)| *l == lang).map_or(0, |v| v.1)
}

/// The language with the most votes, when one leads alone.
fn leader(votes: &[(&'static str, usize)]) -> Option<(&'static str, usize)> {
    let mut sorted = votes.to_vec();
    sorted.sort_by_key(|v| std::cmp::Reverse(v.1));
    let (best, n) = sorted[0];
    (n > 0 && n > sorted[1].1).then_some((best, n))
}

fn detector() -> Detector {
    Detector::with_allowlist(vec![
        Lang::Ita,
        Lang::Fra,
        Lang::Eng,
        Lang::Spa,
        Lang::Por,
        Lang::Deu,
    ])
}

fn code(lang: Lang) -> Option<&'static str> {
    Some(match lang {
        Lang::Ita => "it",
        Lang::Fra => "fr",
        Lang::Eng => "en",
        Lang::Spa => "es",
        Lang::Por => "pt",
        Lang::Deu => "de",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_supported_language_is_recognised() {
        for (text, lang) in [
            ("Ciao, vorrei sapere dove è il mio ordine", "it"),
            ("Quanto costa la spedizione in Francia?", "it"),
            ("Bonjour, je n'ai pas reçu ma commande", "fr"),
            ("Je voudrais retourner un article", "fr"),
            ("Hello, where is my order please?", "en"),
            ("Where is my parcel", "en"),
            ("Hola, quiero saber dónde está mi pedido", "es"),
            ("¿Cuándo llega mi paquete?", "es"),
            ("Olá, não recebi a minha encomenda", "pt"),
            ("Quando chega a minha encomenda?", "pt"),
            ("Hallo, wo ist meine Bestellung?", "de"),
            ("Ich möchte meine Bestellung zurückgeben", "de"),
        ] {
            assert_eq!(detect(text), Some(lang), "{text}");
        }
    }

    #[test]
    fn accents_and_case_do_not_matter() {
        assert_eq!(detect("OÙ EST MON COLIS ?"), Some("fr"));
        assert_eq!(detect("Ou est mon colis ?"), Some("fr"));
        assert_eq!(detect("Quand arrive mon colis ?"), Some("fr"));
        assert_eq!(detect("Il pacco non è arrivato"), Some("it"));
        assert_eq!(detect("il pacco non e arrivato"), Some("it"));
        assert_eq!(detect("Cuanto cuesta el envio"), Some("es"));
        assert_eq!(detect("¿Cuánto cuesta el envío?"), Some("es"));
    }

    #[test]
    fn short_greetings_and_thanks_are_recognised() {
        for (text, lang) in [
            ("ciao", "it"),
            ("Grazie mille!", "it"),
            ("merci", "fr"),
            ("Bonjour", "fr"),
            ("hi", "en"),
            ("Thanks!", "en"),
            ("hola", "es"),
            ("gracias", "es"),
            ("Olá", "pt"),
            ("obrigado", "pt"),
            ("Danke", "de"),
            ("Guten Tag", "de"),
        ] {
            assert_eq!(detect(text), Some(lang), "{text}");
        }
    }

    #[test]
    fn texts_that_tell_nothing_give_no_answer() {
        for text in ["ok", "OK!", "5", "👍", "", "prezzo?", "12345 678"] {
            assert_eq!(detect(text), None, "{text}");
        }
    }

    #[test]
    fn only_supported_languages_come_out() {
        // Dutch and Polish are not served: the answer is one of ours or none.
        for text in [
            "Hallo, waar is mijn bestelling? Ik heb nog niets ontvangen.",
            "Dzień dobry, gdzie jest moje zamówienie?",
        ] {
            if let Some(lang) = detect(text) {
                assert!(SUPPORTED.contains(&lang), "{text}: {lang}");
            }
        }
    }
}
