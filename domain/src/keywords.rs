//! Keyword matching, shared by department routing, auto-reply rules, lead
//! flows and the "talk to an agent" handover: case- and accent-insensitive
//! and word-aware. A keyword (one word or a phrase) matches when its words
//! appear in the text as whole, consecutive words: "retour" matches "Retour
//! de colis" but not "retourner" (list "retourner" too if it should).
//!
//! Also here: the built-in multilingual topic lexicon (FR/IT/EN/ES/PT) used to
//! give a conversation its topic, and the words asking for a human.

/// Lower case, accents folded, every run of non-alphanumerics one space.
pub fn fold(text: &str) -> String {
    let ascii = deunicode::deunicode(text);
    let mut out = String::with_capacity(ascii.len());
    let mut space = true;
    for c in ascii.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
            space = false;
        } else if !space {
            out.push(' ');
            space = true;
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// A text split into folded words, ready to be matched many times.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Words(Vec<String>);

impl Words {
    pub fn of(text: &str) -> Self {
        Self(
            fold(text)
                .split(' ')
                .filter(|w| !w.is_empty())
                .map(String::from)
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// Whether `keyword`'s words appear here as consecutive whole words.
    pub fn contains(&self, keyword: &str) -> bool {
        let needle = Words::of(keyword);
        if needle.is_empty() || needle.0.len() > self.0.len() {
            return false;
        }
        self.0
            .windows(needle.0.len())
            .any(|w| w == needle.0.as_slice())
    }

    /// The first of `keywords` (in their order) found in the text.
    pub fn first_of<'a, S: AsRef<str>>(&self, keywords: &'a [S]) -> Option<&'a str> {
        keywords
            .iter()
            .map(AsRef::as_ref)
            .find(|k| self.contains(k))
    }
}

/// Whether `keyword` matches `text` (see the module documentation).
pub fn matches(text: &str, keyword: &str) -> bool {
    Words::of(text).contains(keyword)
}

/// Topics detected out of the box, with their words in French, Italian,
/// English, Spanish and Portuguese.
pub const TOPICS: &[(&str, &[&str])] = &[
    (
        "return",
        &[
            "retour",
            "retours",
            "rembourser",
            "remboursement",
            "reso",
            "resi",
            "rimborso",
            "return",
            "returns",
            "refund",
            "devolucion",
            "devolver",
            "reembolso",
            "devolucao",
            "devolver",
            "troca",
        ],
    ),
    (
        "billing",
        &[
            "facture",
            "factures",
            "facturation",
            "paiement",
            "fattura",
            "fatture",
            "fatturazione",
            "pagamento",
            "invoice",
            "invoices",
            "billing",
            "payment",
            "charged",
            "factura",
            "pago",
            "cobro",
            "fatura",
            "cobranca",
            "boleto",
        ],
    ),
    (
        "logistics",
        &[
            "livraison",
            "colis",
            "suivi",
            "expedition",
            "consegna",
            "spedizione",
            "pacco",
            "corriere",
            "tracking",
            "delivery",
            "shipping",
            "parcel",
            "package",
            "envio",
            "entrega",
            "paquete",
            "encomenda",
            "rastreio",
            "pedido",
            "commande",
            "ordine",
            "order",
        ],
    ),
    (
        "size",
        &[
            "taille",
            "pointure",
            "taglia",
            "misura",
            "misure",
            "size",
            "sizes",
            "sizing",
            "talla",
            "tallas",
            "tamanho",
            "numeracao",
        ],
    ),
    (
        "price",
        &[
            "prix",
            "tarif",
            "promo",
            "reduction",
            "prezzo",
            "prezzi",
            "costo",
            "sconto",
            "price",
            "prices",
            "cost",
            "discount",
            "precio",
            "precios",
            "descuento",
            "preco",
            "precos",
            "desconto",
        ],
    ),
];

/// The first topic (in [`TOPICS`] order) whose words appear in the text.
pub fn detect_topic(words: &Words) -> Option<&'static str> {
    TOPICS
        .iter()
        .find(|(_, list)| list.iter().any(|k| words.contains(k)))
        .map(|(topic, _)| *topic)
}

/// Words that ask for a person, in the five languages.
pub const HANDOVER_WORDS: &[&str] = &[
    "agent",
    "agents",
    "humain",
    "conseiller",
    "operateur",
    "operatore",
    "operatrice",
    "umano",
    "persona",
    "human",
    "person",
    "operator",
    "representative",
    "agente",
    "humano",
    "operador",
    "atendente",
    "asesor",
];

/// Whether a message asks for a human ("je veux un agent", "operatore per favore").
pub fn asks_for_human(words: &Words) -> bool {
    HANDOVER_WORDS.iter().any(|w| words.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_ignores_case_and_accents() {
        assert!(matches("RÉCLAMATION urgente", "reclamation"));
        assert!(matches("Où est ma facture ?", "FACTURE"));
        assert!(matches("devolução do pedido", "devolucao"));
    }

    #[test]
    fn matching_is_word_aware() {
        assert!(matches("Retour de colis", "retour"));
        assert!(!matches("Je voudrais retourner ce colis", "retour"));
        assert!(matches("Je voudrais retourner ce colis", "retourner"));
        assert!(!matches("preso", "reso"));
    }

    #[test]
    fn phrases_match_as_consecutive_words() {
        assert!(matches("Where is my order, please?", "where is my order"));
        assert!(!matches("where is the order", "where is my order"));
        assert!(!matches("anything", ""));
    }

    #[test]
    fn topics_are_found_in_every_language() {
        for (text, topic) in [
            ("Vorrei fare un reso", "return"),
            ("Je n'ai pas reçu ma facture", "billing"),
            ("Where is my parcel?", "logistics"),
            ("¿Qué talla me recomiendan?", "size"),
            ("Qual é o preço?", "price"),
        ] {
            assert_eq!(detect_topic(&Words::of(text)), Some(topic), "{text}");
        }
        assert_eq!(detect_topic(&Words::of("Bonjour")), None);
    }

    #[test]
    fn asking_for_a_person_in_five_languages() {
        for text in [
            "je veux parler à un humain",
            "operatore per favore",
            "Talk to an agent",
            "quiero hablar con un agente",
            "falar com atendente",
        ] {
            assert!(asks_for_human(&Words::of(text)), "{text}");
        }
        assert!(!asks_for_human(&Words::of("agenda de livraison")));
    }
}
