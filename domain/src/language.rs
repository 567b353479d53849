//! Language detection per conversation, for choosing reply variants: French,
//! Italian, English, Spanish and Portuguese, by their most frequent words
//! (accents folded). Short or ambiguous texts give no answer rather than a
//! wrong one; the conversation keeps the first language detected.

use crate::keywords::Words;

const LANGUAGES: &[(&str, &[&str])] = &[
    (
        "fr",
        &[
            "le", "la", "les", "de", "des", "du", "un", "une", "et", "est", "je", "vous", "pour",
            "pas", "mon", "ma", "mes", "bonjour", "merci", "avec", "sur", "ou", "au", "aux", "ce",
            "qui", "que", "suis", "avez", "votre", "commande", "colis", "salut", "oui", "non", "j",
            "c", "n", "d", "l", "qu",
        ],
    ),
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
            "grazie",
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
            "salve",
            "nel",
            "alla",
        ],
    ),
    (
        "en",
        &[
            "the", "is", "and", "to", "of", "my", "i", "you", "it", "for", "hello", "hi", "thanks",
            "thank", "please", "where", "what", "when", "with", "have", "order", "can", "would",
            "this", "that", "not", "are", "was", "how", "do",
        ],
    ),
    (
        "es",
        &[
            "el", "los", "las", "de", "del", "un", "una", "y", "es", "que", "no", "por", "para",
            "mi", "hola", "gracias", "con", "donde", "pedido", "quiero", "tengo", "cuando", "esta",
            "como", "buenos", "dias", "muy", "pero", "usted",
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
        ],
    ),
];

/// The language of a text, when at least two of its words say so and one
/// language leads.
pub fn detect(text: &str) -> Option<&'static str> {
    let words = Words::of(text);
    let mut scores: Vec<(&'static str, usize)> = LANGUAGES
        .iter()
        .map(|(lang, list)| {
            let n = words
                .as_slice()
                .iter()
                .filter(|w| list.contains(&w.as_str()))
                .count();
            (*lang, n)
        })
        .collect();
    scores.sort_by_key(|s| std::cmp::Reverse(s.1));
    let (best, n) = scores[0];
    let second = scores[1].1;
    (n >= 2 && n > second).then_some(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_languages_are_recognised() {
        for (text, lang) in [
            ("Bonjour, je n'ai pas reçu ma commande", "fr"),
            ("Ciao, vorrei sapere dove è il mio ordine", "it"),
            ("Hello, where is my order please?", "en"),
            ("Hola, quiero saber dónde está mi pedido", "es"),
            ("Olá, não recebi a minha encomenda", "pt"),
        ] {
            assert_eq!(detect(text), Some(lang), "{text}");
        }
    }

    #[test]
    fn short_texts_give_no_answer() {
        assert_eq!(detect("ok"), None);
        assert_eq!(detect("5"), None);
    }
}
