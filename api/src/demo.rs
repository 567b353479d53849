//! `helpdesk demo`: fills the database with a realistic WhatsApp support desk
//! (an Italian and a French number, five departments, staff, automation, SLA
//! policies and `n` conversations over the past six weeks) so that every query
//! and metric has something to show.
//!
//! Reference data is looked up by its unique name first, so the command can run
//! twice. Conversations, contacts and messages take ids from a block reserved up
//! front and are written in multi-row inserts, one transaction per chunk: run it
//! against an idle database (the server stopped, or at least not receiving).

use std::collections::{HashMap, HashSet, VecDeque};

use anyhow::{Context, Result};
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Timelike, Utc, Weekday};
use domain::staff::StaffForCreate;
use domain::{Actor, Domain};
use entity::{
    AssignmentKind as AK, ConsentState, ConversationStatus as CS, DeliveryStatus as DS, Direction,
    EscalationKind, FlowRunStatus, MessageType, Presence, Priority, Role, RoutingStrategy,
    SenderKind, SlaKind, SlaLevel, SurveyKind, SurveyStatus, TriggerMode, assignment,
    auto_reply_rule, billing_ledger, business_hours, canned_response, channel, contact,
    contact_tag, conversation, conversation_tag, department, department_member, holiday, lead_flow,
    lead_flow_run, message, note, presence_interval, sla_event, sla_policy, survey, tag, user,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    IntoActiveModel, Iterable, PaginatorTrait, QueryFilter, QuerySelect, Set, Statement,
    TransactionTrait,
};
use serde_json::json;

/// The password of every staff member the demo creates.
pub const DEMO_PASSWORD: &str = "demo-password-1";
const DAYS: i64 = 42;
/// Conversations per transaction.
const CHUNK: usize = 1000;
/// Bind parameters per statement (SQLite allows 32,766, PostgreSQL 65,535).
const MAX_PARAMS: usize = 30_000;
const MAX_MESSAGES: u32 = 12;
const LANGS: [&str; 3] = ["it", "fr", "en"];
const FIRST: [[&str; 8]; 3] = [
    [
        "Giulia",
        "Marco",
        "Francesca",
        "Alessandro",
        "Chiara",
        "Lorenzo",
        "Sara",
        "Matteo",
    ],
    [
        "Camille", "Lucas", "Chloé", "Hugo", "Manon", "Louis", "Inès", "Gabriel",
    ],
    [
        "Emily", "James", "Olivia", "Jack", "Amelia", "Harry", "Sophie", "Oliver",
    ],
];
const LAST: [[&str; 8]; 3] = [
    [
        "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci",
    ],
    [
        "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
    ],
    [
        "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Evans", "Walker",
    ],
];
const CITIES: [[&str; 4]; 3] = [
    ["Milano", "Roma", "Torino", "Napoli"],
    ["Paris", "Lyon", "Marseille", "Lille"],
    ["London", "Manchester", "Dublin", "Edinburgh"],
];
const SKUS: [&str; 5] = [
    "GIACCA-ROMA",
    "BLAZER-NICE",
    "TRENCH-MILANO",
    "SNEAKER-LIDO",
    "ABITO-CAPRI",
];
/// Relative volume by local hour: peaks 10–12 and 20–22.
const HOURS: [u32; 24] = [
    1, 1, 1, 1, 1, 1, 2, 4, 7, 10, 15, 15, 11, 8, 8, 8, 8, 7, 7, 9, 14, 14, 6, 2,
];

struct Topic {
    key: &'static str,
    department: &'static str,
    weight: u32,
    /// Answered by a keyword FAQ rule of the same key.
    faq: bool,
    ask: [[&'static str; 2]; 3],
    answer: [[&'static str; 2]; 3],
    progress: [&'static str; 2],
}

const TOPICS: [Topic; 7] = [
    Topic {
        key: "logistics",
        department: "Logistics",
        weight: 30,
        faq: true,
        ask: [
            [
                "Ciao, il mio ordine {order} non è ancora arrivato: mi date il tracking della spedizione?",
                "Buongiorno, quando arriva la spedizione? Ho ordinato 5 giorni fa.",
            ],
            [
                "Bonjour, ma commande {order} n'est pas arrivée, vous avez le suivi de livraison ?",
                "Bonjour, quel est le délai de livraison pour Lyon ?",
            ],
            [
                "Hi, my order {order} hasn't arrived yet, can I have the tracking number?",
                "Hello, how long does delivery take to London?",
            ],
        ],
        answer: [
            [
                "Ecco il tracking BRT: {track}. La consegna è prevista per domani.",
                "Ho verificato: il pacco è in consegna oggi, riceverai un SMS dal corriere.",
            ],
            [
                "Voici votre numéro de suivi Colissimo : {track}. Livraison prévue demain.",
                "J'ai vérifié : le colis est en cours de livraison aujourd'hui.",
            ],
            [
                "Here is your DHL tracking number: {track}. Delivery is expected tomorrow.",
                "I checked: the parcel is out for delivery today.",
            ],
        ],
        progress: ["tracking sent", "carrier contacted"],
    },
    Topic {
        key: "return",
        department: "Returns",
        weight: 22,
        faq: false,
        ask: [
            [
                "Vorrei fare un reso per l'ordine {order}, la taglia non va bene.",
                "Il prodotto è arrivato danneggiato, come faccio il reso?",
            ],
            [
                "Bonjour, je voudrais faire un retour pour la commande {order}.",
                "Le produit est arrivé abîmé, comment faire un retour ?",
            ],
            [
                "I'd like to return order {order}, it doesn't fit.",
                "The item arrived damaged, how do I return it?",
            ],
        ],
        answer: [
            [
                "Ti ho inviato l'etichetta di reso via email. Il rimborso arriva entro 5 giorni dalla ricezione.",
                "Mi dispiace! Mandami una foto del danno e ti spedisco subito il cambio.",
            ],
            [
                "Je vous ai envoyé l'étiquette de retour par e-mail. Remboursement sous 5 jours.",
                "Désolée ! Envoyez-moi une photo et je vous expédie un échange.",
            ],
            [
                "I've emailed you a prepaid return label. Refunds arrive within 5 days.",
                "So sorry! Send me a photo and I'll ship a replacement right away.",
            ],
        ],
        progress: ["label sent", "refund approved"],
    },
    Topic {
        key: "size",
        department: "Sales",
        weight: 15,
        faq: true,
        ask: [
            [
                "Che taglia mi consigliate per {sku}? Di solito porto la M.",
                "Il modello {sku} veste grande o piccolo? Che taglia prendo?",
            ],
            [
                "Quelle taille me conseillez-vous pour {sku} ? Je fais 1m75.",
                "Le modèle {sku} taille grand ou petit ? Quelle taille prendre ?",
            ],
            [
                "Which size should I take for the {sku}? I'm usually a medium.",
                "Does the {sku} run large or small? Which size?",
            ],
        ],
        answer: [
            [
                "Per la tua misura ti consiglio la M: il modello {sku} veste regolare.",
                "Ti consiglio una taglia in più: il tessuto è poco elastico.",
            ],
            [
                "Je vous conseille le M, le modèle {sku} taille normalement.",
                "Prenez une taille au-dessus, la coupe est ajustée.",
            ],
            [
                "I'd recommend a medium: the {sku} fits true to size.",
                "Go one size up: the cut is slim.",
            ],
        ],
        progress: ["size advised", "size guide sent"],
    },
    Topic {
        key: "invoice",
        department: "Billing",
        weight: 12,
        faq: false,
        ask: [
            [
                "Mi serve la fattura per l'ordine {order}, ho la partita IVA.",
                "Mi avete addebitato due volte l'ordine {order}.",
            ],
            [
                "Pouvez-vous m'envoyer la facture de la commande {order} ?",
                "J'ai été débité deux fois pour la commande {order}.",
            ],
            [
                "Could you send me the invoice for order {order}?",
                "I was charged twice for order {order}.",
            ],
        ],
        answer: [
            [
                "Fatto: la fattura è stata inviata alla tua email.",
                "Il doppio addebito è una preautorizzazione: sparirà entro 3 giorni.",
            ],
            [
                "C'est fait : la facture vous a été envoyée par e-mail.",
                "Le double débit est une pré-autorisation, il disparaîtra sous 3 jours.",
            ],
            [
                "Done: the invoice has been sent to your email.",
                "The double charge is a pre-authorisation and will disappear within 3 days.",
            ],
        ],
        progress: ["invoice sent", "payment checked"],
    },
    Topic {
        key: "technical",
        department: "Technical",
        weight: 8,
        faq: false,
        ask: [
            [
                "Non riesco ad accedere al mio account, la password non funziona.",
                "Il codice sconto non viene accettato al checkout.",
            ],
            [
                "Je n'arrive pas à me connecter à mon compte.",
                "Le code promo ne fonctionne pas au paiement.",
            ],
            [
                "I can't log in to my account.",
                "The discount code isn't accepted at checkout.",
            ],
        ],
        answer: [
            [
                "Ti ho inviato un link per reimpostare la password, valido 1 ora.",
                "Ho riattivato il codice: ora dovrebbe funzionare.",
            ],
            [
                "Je vous ai envoyé un lien pour réinitialiser le mot de passe.",
                "J'ai réactivé le code, il devrait fonctionner maintenant.",
            ],
            [
                "I've sent you a password reset link, valid for one hour.",
                "I've re-enabled the code, it should work now.",
            ],
        ],
        progress: ["password reset", "bug reported to IT"],
    },
    Topic {
        key: "purchase",
        department: "Sales",
        weight: 10,
        faq: false,
        ask: [
            [
                "Avete ancora {sku} in taglia S?",
                "Vorrei un preventivo per 20 pezzi di {sku} per il mio negozio.",
            ],
            [
                "Avez-vous encore {sku} en taille S ?",
                "Je voudrais un devis pour 20 pièces de {sku}.",
            ],
            [
                "Is the {sku} still available in small?",
                "Can I get a quote for 20 pieces of {sku} for my shop?",
            ],
        ],
        answer: [
            [
                "Sì, è disponibile: ti mando il link per completare l'ordine.",
                "Ti preparo il preventivo: per 20 pezzi lo sconto è del 15%.",
            ],
            [
                "Oui, il est disponible : voici le lien pour commander.",
                "Je prépare le devis : pour 20 pièces la remise est de 15 %.",
            ],
            [
                "Yes, it's in stock: here is the link to order.",
                "I'll prepare the quote: 20 pieces get a 15% discount.",
            ],
        ],
        progress: ["stock checked", "quote sent"],
    },
    Topic {
        key: "price_complaint",
        department: "Sales",
        weight: 3,
        faq: false,
        ask: [
            [
                "Ho pagato {sku} 40 euro in più del prezzo di oggi, mi rimborsate la differenza?",
                "Il prezzo è cambiato dopo il mio ordine {order}, non è giusto.",
            ],
            [
                "J'ai payé {sku} 40 € de plus que le prix actuel, vous remboursez la différence ?",
                "Le prix a baissé juste après ma commande {order}.",
            ],
            [
                "I paid 40 euros more for the {sku} than today's price, can you refund the difference?",
                "The price dropped right after my order {order}.",
            ],
        ],
        answer: [
            [
                "Ti riconosco la differenza come buono di 40 €, valido 6 mesi.",
                "Ho rimborsato la differenza sulla tua carta.",
            ],
            [
                "Je vous offre la différence en bon d'achat de 40 €, valable 6 mois.",
                "J'ai remboursé la différence sur votre carte.",
            ],
            [
                "I've added the difference as a 40 euro voucher, valid for 6 months.",
                "I've refunded the difference to your card.",
            ],
        ],
        progress: ["voucher issued", "difference refunded"],
    },
];
const DETAILS: [&str; 3] = [
    "Il numero d'ordine è {order}.",
    "Le numéro de commande est {order}.",
    "The order number is {order}.",
];
const FOLLOW: [[&str; 3]; 3] = [
    [
        "Ok, e quanto ci vuole?",
        "Va bene, attendo.",
        "Posso pagare con PayPal?",
    ],
    [
        "D'accord, et ça prend combien de temps ?",
        "Très bien, j'attends.",
        "Je peux payer par PayPal ?",
    ],
    [
        "OK, and how long will it take?",
        "Alright, I'll wait.",
        "Can I pay with PayPal?",
    ],
];
const THANKS: [[&str; 2]; 3] = [
    ["Perfetto, grazie mille 🙏", "Ok grazie!"],
    ["Parfait, merci beaucoup 🙏", "D'accord, merci !"],
    ["Perfect, thanks a lot 🙏", "Great, thank you!"],
];
const MORE: [[&str; 2]; 3] = [
    [
        "Certo, verifico subito.",
        "Sì, 2-3 giorni lavorativi. Posso aiutarti con altro?",
    ],
    [
        "Bien sûr, je vérifie tout de suite.",
        "Oui, 2 à 3 jours ouvrés. Autre chose ?",
    ],
    [
        "Sure, let me check.",
        "Yes, 2-3 working days. Anything else?",
    ],
];
const BYE: [&str; 3] = [
    "Grazie a te, buona giornata!",
    "Merci à vous, bonne journée !",
    "Thank you, have a nice day!",
];

type RuleDef = (
    &'static str,
    &'static str,
    TriggerMode,
    Option<usize>,
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
);
/// (name, kind used by the generator, mode, language, keywords, variants ≤256 chars, buttons ≤20 chars)
const RULES: [RuleDef; 13] = [
    (
        "Benvenuto",
        "welcome",
        TriggerMode::FirstContact,
        Some(0),
        &[],
        &[
            "Ciao {name}! Grazie per averci scritto 🙌 Un operatore ti risponde entro 10 minuti (lun–ven 9–18).",
            "Ciao {name}, benvenuto! Scrivici pure il numero d'ordine: ti rispondiamo entro 10 minuti.",
        ],
        &[],
    ),
    (
        "Bienvenue",
        "welcome",
        TriggerMode::FirstContact,
        Some(1),
        &[],
        &[
            "Bonjour {name} ! Merci pour votre message 🙌 Un conseiller vous répond sous 10 minutes (lun–ven 9h–18h).",
            "Bonjour {name}, bienvenue ! Indiquez-nous votre numéro de commande : réponse sous 10 minutes.",
        ],
        &[],
    ),
    (
        "Welcome",
        "welcome",
        TriggerMode::FirstContact,
        Some(2),
        &[],
        &[
            "Hi {name}! Thanks for your message 🙌 An agent will reply within 10 minutes (Mon–Fri 9–18).",
            "Hi {name}, welcome! Send us your order number: we reply within 10 minutes.",
        ],
        &[],
    ),
    (
        "Fuori orario",
        "offline",
        TriggerMode::Offline,
        Some(0),
        &[],
        &[
            "Siamo chiusi (22:00–08:00). Lasciaci il tuo messaggio: ti rispondiamo domattina per primi!",
        ],
        &[],
    ),
    (
        "Hors horaires",
        "offline",
        TriggerMode::Offline,
        Some(1),
        &[],
        &[
            "Nous sommes fermés (22h–8h). Laissez votre message : nous vous répondons dès demain matin !",
        ],
        &[],
    ),
    (
        "Out of hours",
        "offline",
        TriggerMode::Offline,
        Some(2),
        &[],
        &[
            "We're closed (22:00–08:00). Leave your message and we'll reply first thing in the morning!",
        ],
        &[],
    ),
    (
        "FAQ spedizioni",
        "logistics",
        TriggerMode::Keyword,
        Some(0),
        &["spedizione", "consegna", "tracking", "corriere"],
        &[
            "Spedizione gratuita sopra 50 €, consegna in 24–48 h. Traccia il tuo ordine: https://shop.example/track",
            "Consegniamo in 1–2 giorni lavorativi con BRT. Il tracking arriva via email alla spedizione.",
            "Il tuo pacco è in viaggio? Segui la consegna qui: https://shop.example/track",
        ],
        &["Traccia ordine", "Parla con noi"],
    ),
    (
        "FAQ livraison",
        "logistics",
        TriggerMode::Keyword,
        Some(1),
        &["livraison", "colis", "suivi", "expédition"],
        &[
            "Livraison offerte dès 50 €, en 48 h. Suivez votre colis : https://shop.example/track",
            "Nous livrons en 2 jours ouvrés avec Colissimo. Le suivi vous est envoyé par e-mail.",
        ],
        &["Suivre ma commande", "Parler à un agent"],
    ),
    (
        "FAQ shipping",
        "logistics",
        TriggerMode::Keyword,
        Some(2),
        &["delivery", "shipping", "tracking", "parcel"],
        &[
            "Free delivery over €50, 2–3 working days. Track your order: https://shop.example/track",
            "We ship within 24 h with DHL; the tracking link comes by email.",
        ],
        &["Track my order", "Talk to an agent"],
    ),
    (
        "FAQ taglie",
        "size",
        TriggerMode::Keyword,
        Some(0),
        &["taglia", "taglie", "misura"],
        &[
            "Trovi la guida taglie qui: https://shop.example/taglie. Se sei tra due taglie, prendi la più grande!",
            "I nostri capi vestono regolari: guida taglie su https://shop.example/taglie",
        ],
        &["Guida taglie", "Verifica stock", "Parla con noi"],
    ),
    (
        "FAQ tailles",
        "size",
        TriggerMode::Keyword,
        Some(1),
        &["taille", "tailles", "pointure"],
        &[
            "Notre guide des tailles : https://shop.example/tailles. Entre deux tailles, prenez la plus grande !",
        ],
        &[
            "Guide des tailles",
            "Vérifier le stock",
            "Parler à un agent",
        ],
    ),
    (
        "FAQ sizes",
        "size",
        TriggerMode::Keyword,
        Some(2),
        &["size", "sizes", "fit"],
        &[
            "Our size guide: https://shop.example/sizes. Between two sizes? Take the larger one!",
            "Our clothes fit true to size: see https://shop.example/sizes",
        ],
        &["Size guide", "Check stock", "Talk to an agent"],
    ),
    (
        "Pausa pranzo",
        "lunch",
        TriggerMode::Scheduled,
        None,
        &[],
        &[
            "Siamo in pausa pranzo (11:30–13:00) 🍝 ti rispondiamo subito dopo! / Pause déjeuner (11h30–13h), on revient vite ! / Lunch break (11:30–13:00), back soon!",
        ],
        &[],
    ),
];

type Depts = HashMap<String, i64>;

#[derive(Clone, Copy, PartialEq)]
enum Live {
    No,
    Queued,
    Assigned,
    Pending,
}

#[derive(Clone)]
struct Person {
    id: i64,
    channel: usize,
    lang: usize,
    first: &'static str,
    vip: bool,
    automated: bool,
}

struct Agent {
    id: i64,
    departments: Vec<i64>,
    capacity: i64,
    load: i64,
}

struct Refs {
    /// (id, price per paid message in micro-USD); Italian first, French second.
    channels: Vec<(i64, i64)>,
    departments: Depts,
    agents: Vec<Agent>,
    editor: Option<i64>,
    tags: HashMap<String, i64>,
    rules: HashMap<(&'static str, usize), (i64, &'static RuleDef)>,
    /// Per priority (low, normal, high, urgent): (policy id, first response secs, resolution secs).
    policies: [(Option<i64>, i64, i64); 4],
    flow: Option<i64>,
}

#[derive(Default)]
struct Batch {
    contacts: Vec<contact::Model>,
    conversations: Vec<conversation::Model>,
    messages: Vec<message::Model>,
    ledger: Vec<billing_ledger::ActiveModel>,
    surveys: Vec<survey::ActiveModel>,
    notes: Vec<note::ActiveModel>,
    assignments: Vec<assignment::ActiveModel>,
    sla: Vec<sla_event::ActiveModel>,
    conversation_tags: Vec<conversation_tag::ActiveModel>,
    contact_tags: Vec<contact_tag::ActiveModel>,
    runs: Vec<lead_flow_run::ActiveModel>,
}

#[derive(Default)]
struct Totals {
    contacts: usize,
    messages: usize,
    ledger: usize,
    surveys: usize,
    csat: usize,
    notes: usize,
    sla: usize,
    queued: usize,
    assigned: usize,
    pending: usize,
}

struct Gen {
    rng: StdRng,
    now: DateTime<Utc>,
    refs: Refs,
    next_contact: i64,
    next_conversation: i64,
    next_message: i64,
    billed: HashMap<(i64, String), i64>,
    recent: VecDeque<(Person, usize, DateTime<Utc>)>,
}

pub async fn run(domain: &Domain, conversations: u32) -> Result<String> {
    let db = &domain.db;
    let now = domain.clock.now();
    let channels = ensure_channels(db, now).await?;
    let departments = ensure_departments(db, now).await?;
    let created_staff = ensure_staff(domain, &departments).await?;
    let staff = user::Entity::find().all(db).await?;
    let editor = staff.iter().find(|u| u.role == Role::Editor).map(|u| u.id);
    let tags = ensure_tags(db, now).await?;
    ensure_canned(db, &departments, now).await?;
    let rules = ensure_rules(db, channels.first().map(|c| c.0), now).await?;
    let policies = ensure_sla(db, &departments, editor, now).await?;
    let flow = ensure_lead_flow(db, &departments, now).await?;
    let agents = load_agents(db, &staff).await?;
    presence(db, &agents, now).await?;
    let refs = Refs {
        channels,
        departments,
        agents,
        editor,
        tags,
        rules,
        policies,
        flow,
    };

    let n = conversations as i64;
    let mut billed = HashMap::new();
    let rows: Vec<(i64, String, i64)> = billing_ledger::Entity::find()
        .select_only()
        .column(billing_ledger::Column::ChannelId)
        .column(billing_ledger::Column::Period)
        .column_as(billing_ledger::Column::Id.count(), "n")
        .group_by(billing_ledger::Column::ChannelId)
        .group_by(billing_ledger::Column::Period)
        .into_tuple()
        .all(db)
        .await?;
    for (channel, period, count) in rows {
        billed.insert((channel, period), count);
    }
    let mut g = Gen {
        rng: StdRng::seed_from_u64(0x4845_4c50 ^ n as u64),
        now,
        refs,
        next_contact: reserve_ids(db, "contacts", n).await?,
        next_conversation: reserve_ids(db, "conversations", n).await?,
        next_message: reserve_ids(db, "messages", n * i64::from(MAX_MESSAGES)).await?,
        billed,
        recent: VecDeque::new(),
    };
    let plans = g.plan(conversations as usize);
    let mut t = Totals::default();
    for chunk in plans.chunks(CHUNK) {
        let mut b = Batch::default();
        for &(at, live) in chunk {
            g.conversation(at, live, &mut b);
            match live {
                Live::Queued => t.queued += 1,
                Live::Assigned => t.assigned += 1,
                Live::Pending => t.pending += 1,
                Live::No => {}
            }
        }
        t.contacts += b.contacts.len();
        t.messages += b.messages.len();
        t.ledger += b.ledger.len();
        t.surveys += b.surveys.len();
        t.csat += b.conversations.iter().filter(|c| c.csat.is_some()).count();
        t.notes += b.notes.len();
        t.sla += b.sla.len();
        b.flush(db).await.context("inserting demo conversations")?;
    }
    let admins: Vec<&str> = staff
        .iter()
        .filter(|u| u.role == Role::Admin)
        .map(|u| u.email.as_str())
        .collect();
    Ok(format!(
        "Demo desk ready: 2 WhatsApp channels (Italy, France), {} departments, {} staff ({} created now), {} tags, \
         canned responses, {} auto-reply rules, SLA policies and Europe/Rome business hours; {} new contacts and \
         {} conversations over the past {DAYS} days ({} waiting in queue, {} assigned, {} pending, the rest resolved \
         or closed) with {} messages, {} billing rows, {} surveys ({} CSAT answers), {} notes and {} SLA events. \
         Log in as editor giulia.conti@helpdesk.demo, analyst paul.lefevre@helpdesk.demo or agent \
         marco.rossi@helpdesk.demo (every demo user's password is {DEMO_PASSWORD}); admins keep their own password: {}.",
        g.refs.departments.len(),
        staff.len(),
        created_staff,
        g.refs.tags.len(),
        RULES.len(),
        t.contacts,
        conversations,
        t.queued,
        t.assigned,
        t.pending,
        t.messages,
        t.ledger,
        t.surveys,
        t.csat,
        t.notes,
        t.sla,
        if admins.is_empty() {
            "none yet".to_string()
        } else {
            admins.join(", ")
        },
    ))
}

// ---------------------------------------------------------------- reference data

async fn ensure_channels(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<Vec<(i64, i64)>> {
    let defs = [
        (
            "Boutique Italia",
            "106540352242922",
            "+39 02 8736 4410",
            "102290129340398",
        ),
        (
            "Boutique France",
            "109283746501928",
            "+33 1 84 88 52 10",
            "102290129340411",
        ),
    ];
    let mut out = Vec::new();
    for (name, number_id, display, waba) in defs {
        let found = channel::Entity::find()
            .filter(channel::Column::PhoneNumberId.eq(number_id))
            .one(db)
            .await?;
        let row = match found {
            Some(row) => row,
            None => {
                channel::ActiveModel {
                    name: Set(name.into()),
                    phone_number_id: Set(number_id.into()),
                    display_phone_number: Set(Some(display.into())),
                    waba_id: Set(Some(waba.into())),
                    app_secret: Set(None),
                    access_token: Set(None),
                    region: Set("europe".into()),
                    is_active: Set(true),
                    created_at: Set(now),
                    updated_at: Set(now),
                    ..Default::default()
                }
                .insert(db)
                .await?
            }
        };
        // Meta: 0.005 USD per message in South-East Asia, 0.008 USD in Europe and the Americas.
        let price = if row.region.contains("asia") {
            5_000
        } else {
            8_000
        };
        out.push((row.id, price));
    }
    Ok(out)
}

async fn ensure_departments(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<Depts> {
    let defs: [(&str, &str, RoutingStrategy, &[&str]); 5] = [
        (
            "Returns",
            "Returns, exchanges and refunds",
            RoutingStrategy::Smart,
            &[
                "reso",
                "resi",
                "rimborso",
                "danneggiato",
                "retour",
                "remboursement",
                "abîmé",
                "return",
                "refund",
                "damaged",
                "devolución",
                "reembolso",
            ],
        ),
        (
            "Logistics",
            "Shipping, delivery and tracking",
            RoutingStrategy::Smart,
            &[
                "spedizione",
                "consegna",
                "corriere",
                "livraison",
                "colis",
                "suivi",
                "delivery",
                "shipping",
                "tracking",
                "parcel",
                "envío",
                "entrega",
            ],
        ),
        (
            "Billing",
            "Invoices and payments",
            RoutingStrategy::RoundRobin,
            &[
                "fattura",
                "pagamento",
                "addebito",
                "facture",
                "paiement",
                "débité",
                "invoice",
                "payment",
                "charged",
                "factura",
            ],
        ),
        (
            "Sales",
            "Sizes, stock, quotes and orders",
            RoutingStrategy::RoundRobin,
            &[
                "taglia",
                "preventivo",
                "disponibile",
                "taille",
                "devis",
                "disponible",
                "size",
                "stock",
                "quote",
                "talla",
                "precio",
            ],
        ),
        (
            "Technical",
            "Accounts, website and app",
            RoutingStrategy::Smart,
            &[
                "password",
                "accesso",
                "codice",
                "connexion",
                "compte",
                "login",
                "account",
                "bug",
                "app",
            ],
        ),
    ];
    for (name, description, strategy, keywords) in defs {
        if department::Entity::find()
            .filter(department::Column::Name.eq(name))
            .count(db)
            .await?
            == 0
        {
            department::ActiveModel {
                name: Set(name.into()),
                description: Set(Some(description.into())),
                keywords: Set(json!(keywords)),
                routing_strategy: Set(strategy),
                round_robin_cursor: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(db)
            .await?;
        }
    }
    Ok(department::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|d| (d.name, d.id))
        .collect())
}

async fn ensure_staff(domain: &Domain, departments: &Depts) -> Result<usize> {
    let defs: [(&str, &str, Role, &[&str], i32, &[&str]); 10] = [
        (
            "giulia.conti",
            "Giulia Conti",
            Role::Editor,
            &[],
            3,
            &["Returns", "Logistics", "Billing", "Sales", "Technical"],
        ),
        ("paul.lefevre", "Paul Lefèvre", Role::Analyst, &[], 3, &[]),
        (
            "marco.rossi",
            "Marco Rossi",
            Role::Agent,
            &["logistics", "returns"],
            3,
            &["Logistics", "Returns"],
        ),
        (
            "chiara.bianchi",
            "Chiara Bianchi",
            Role::Agent,
            &["billing"],
            2,
            &["Billing"],
        ),
        (
            "luca.ferrari",
            "Luca Ferrari",
            Role::Agent,
            &["technical"],
            3,
            &["Technical"],
        ),
        (
            "sofia.romano",
            "Sofia Romano",
            Role::Agent,
            &["sales"],
            3,
            &["Sales"],
        ),
        (
            "camille.martin",
            "Camille Martin",
            Role::Agent,
            &["logistics", "returns"],
            3,
            &["Logistics", "Returns"],
        ),
        (
            "julien.dubois",
            "Julien Dubois",
            Role::Agent,
            &["technical", "billing"],
            2,
            &["Technical", "Billing"],
        ),
        (
            "lea.moreau",
            "Léa Moreau",
            Role::Agent,
            &["sales", "billing"],
            3,
            &["Sales", "Billing"],
        ),
        (
            "emma.wilson",
            "Emma Wilson",
            Role::Agent,
            &["logistics", "sales"],
            2,
            &["Logistics", "Sales", "Returns"],
        ),
    ];
    let existing: HashSet<String> = user::Entity::find()
        .all(&domain.db)
        .await?
        .into_iter()
        .map(|u| u.email)
        .collect();
    let mut created = 0;
    for (login, name, role, skills, capacity, depts) in defs {
        let email = format!("{login}@helpdesk.demo");
        if existing.contains(&email) {
            continue;
        }
        let input = StaffForCreate {
            email,
            name: name.into(),
            password: DEMO_PASSWORD.into(),
            role,
            skills: skills.iter().map(|s| s.to_string()).collect(),
            max_concurrent: Some(capacity),
            department_ids: depts
                .iter()
                .filter_map(|d| departments.get(*d).copied())
                .collect(),
        };
        domain.create_staff(&Actor::system(), input).await?;
        created += 1;
    }
    Ok(created)
}

async fn ensure_tags(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<HashMap<String, i64>> {
    let defs = [
        ("vip", "#d4af37"),
        ("size-question", "#3b82f6"),
        ("damaged", "#ef4444"),
        ("refund", "#f97316"),
        ("repeat", "#a855f7"),
        ("complaint", "#b91c1c"),
        ("invoice-request", "#10b981"),
        ("pre-order", "#0ea5e9"),
    ];
    for (name, color) in defs {
        if tag::Entity::find()
            .filter(tag::Column::Name.eq(name))
            .count(db)
            .await?
            == 0
        {
            tag::ActiveModel {
                name: Set(name.into()),
                color: Set(Some(color.into())),
                created_at: Set(now),
                ..Default::default()
            }
            .insert(db)
            .await?;
        }
    }
    Ok(tag::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|t| (t.name, t.id))
        .collect())
}

async fn ensure_canned(
    db: &DatabaseConnection,
    departments: &Depts,
    now: DateTime<Utc>,
) -> Result<()> {
    let defs = [
        (
            "/ciao",
            "Saluto",
            "Ciao {name}, sono {agent} del servizio clienti: come posso aiutarti?",
            "",
        ),
        (
            "/bonjour",
            "Salutation",
            "Bonjour {name}, ici {agent} du service client : comment puis-je vous aider ?",
            "",
        ),
        (
            "/hello",
            "Greeting",
            "Hi {name}, this is {agent} from customer care: how can I help?",
            "",
        ),
        (
            "/reso",
            "Etichetta di reso",
            "Ti ho inviato l'etichetta di reso prepagata via email: stampala e consegna il pacco entro 14 giorni.",
            "Returns",
        ),
        (
            "/retour",
            "Étiquette de retour",
            "Votre étiquette de retour prépayée vous a été envoyée par e-mail. Remboursement sous 5 jours.",
            "Returns",
        ),
        (
            "/tracking",
            "Tracking",
            "Here is your tracking link: https://shop.example/track/{order}",
            "Logistics",
        ),
        (
            "/fattura",
            "Fattura inviata",
            "La fattura è stata inviata all'indirizzo email dell'ordine {order}.",
            "Billing",
        ),
        (
            "/taglie",
            "Guida taglie",
            "Guida taglie: https://shop.example/taglie. Tra due taglie consigliamo la più grande.",
            "Sales",
        ),
        (
            "/grazie",
            "Chiusura",
            "Grazie per averci contattato! Siamo qui lun–ven 9–18.",
            "",
        ),
    ];
    for (shortcut, title, body, dept) in defs {
        if canned_response::Entity::find()
            .filter(canned_response::Column::Shortcut.eq(shortcut))
            .count(db)
            .await?
            == 0
        {
            canned_response::ActiveModel {
                shortcut: Set(shortcut.into()),
                title: Set(title.into()),
                body: Set(body.into()),
                department_id: Set(departments.get(dept).copied()),
                created_by: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(db)
            .await?;
        }
    }
    Ok(())
}

async fn ensure_rules(
    db: &DatabaseConnection,
    it_channel: Option<i64>,
    now: DateTime<Utc>,
) -> Result<HashMap<(&'static str, usize), (i64, &'static RuleDef)>> {
    let mut out = HashMap::new();
    for (i, def) in RULES.iter().enumerate() {
        let (name, kind, mode, lang, keywords, variants, buttons) = *def;
        let found = auto_reply_rule::Entity::find()
            .filter(auto_reply_rule::Column::Name.eq(name))
            .one(db)
            .await?;
        let schedule = match mode {
            TriggerMode::Offline => {
                Some(json!({"days": [1, 2, 3, 4, 5, 6, 7], "start": "22:00", "end": "08:00"}))
            }
            TriggerMode::Scheduled => {
                Some(json!({"days": [1, 2, 3, 4, 5], "start": "11:30", "end": "13:00"}))
            }
            _ => None,
        };
        let id = match found {
            Some(rule) => rule.id,
            None => {
                auto_reply_rule::ActiveModel {
                    name: Set(name.into()),
                    trigger_mode: Set(mode),
                    channel_id: Set(if mode == TriggerMode::Scheduled {
                        it_channel
                    } else {
                        None
                    }),
                    language: Set(lang.map(|l| LANGS[l].to_string())),
                    keywords: Set(json!(keywords)),
                    variants: Set(json!(variants)),
                    buttons: Set(json!(buttons)),
                    schedule: Set(schedule),
                    priority: Set(i as i32),
                    is_active: Set(true),
                    created_at: Set(now),
                    updated_at: Set(now),
                    ..Default::default()
                }
                .insert(db)
                .await?
                .id
            }
        };
        for l in lang.map_or(0..3, |l| l..l + 1) {
            out.insert((kind, l), (id, def));
        }
    }
    Ok(out)
}

async fn ensure_sla(
    db: &DatabaseConnection,
    departments: &Depts,
    editor: Option<i64>,
    now: DateTime<Utc>,
) -> Result<[(Option<i64>, i64, i64); 4]> {
    let hours = match business_hours::Entity::find()
        .filter(business_hours::Column::Name.eq("Milano office"))
        .one(db)
        .await?
    {
        Some(h) => h.id,
        None => {
            let day = json!([["09:00", "18:00"]]);
            let h = business_hours::ActiveModel {
                name: Set("Milano office".into()), timezone: Set("Europe/Rome".into()),
                schedule: Set(json!({"mon": day, "tue": day, "wed": day, "thu": day, "fri": day, "sat": [], "sun": []})),
                created_at: Set(now), updated_at: Set(now), ..Default::default()
            }.insert(db).await?;
            let holidays = [
                (1, 1, "Capodanno"),
                (1, 6, "Epifania"),
                (4, 25, "Liberazione"),
                (5, 1, "Festa dei lavoratori"),
                (6, 2, "Festa della Repubblica"),
                (8, 15, "Ferragosto"),
                (11, 1, "Ognissanti"),
                (12, 8, "Immacolata"),
                (12, 25, "Natale"),
                (12, 26, "Santo Stefano"),
            ];
            let rows = holidays.iter().filter_map(|&(m, d, name)| {
                Some(holiday::ActiveModel {
                    business_hours_id: Set(h.id),
                    date: Set(NaiveDate::from_ymd_opt(now.year(), m, d)?),
                    name: Set(Some(name.into())),
                    ..Default::default()
                })
            });
            holiday::Entity::insert_many(rows)
                .exec_without_returning(db)
                .await?;
            h.id
        }
    };
    let billing = departments.get("Billing").copied();
    let defs = [
        ("Low priority", Some(Priority::Low), 900, 172_800, None),
        ("Standard", Some(Priority::Normal), 600, 86_400, None),
        ("VIP", Some(Priority::High), 300, 86_400, None),
        ("Urgent", Some(Priority::Urgent), 120, 14_400, None),
        ("Billing questions", None, 1_200, 86_400, billing),
    ];
    let mut out = [(None, 600, 86_400); 4];
    for (i, (name, priority, first, resolution, department)) in defs.into_iter().enumerate() {
        let id = match sla_policy::Entity::find()
            .filter(sla_policy::Column::Name.eq(name))
            .one(db)
            .await?
        {
            Some(p) => p.id,
            None => {
                sla_policy::ActiveModel {
                    name: Set(name.into()),
                    priority: Set(priority),
                    channel_id: Set(None),
                    department_id: Set(department),
                    business_hours_id: Set(Some(hours)),
                    first_response_secs: Set(first),
                    resolution_secs: Set(resolution),
                    warn_percent: Set(80),
                    topic_tolerances: Set(json!({"logistics": 720, "price_complaint": 480})),
                    pause_when_pending: Set(true),
                    escalation_kind: Set(if department.is_some() {
                        EscalationKind::Functional
                    } else {
                        EscalationKind::Hierarchical
                    }),
                    escalate_to_user_id: Set(if department.is_some() { None } else { editor }),
                    escalate_to_department_id: Set(department),
                    notify_customer_on_breach: Set(department.is_some()),
                    is_default: Set(name == "Standard"),
                    created_at: Set(now),
                    updated_at: Set(now),
                    ..Default::default()
                }
                .insert(db)
                .await?
                .id
            }
        };
        if let Some(slot) = out.get_mut(i) {
            *slot = (Some(id), i64::from(first), i64::from(resolution));
        }
    }
    Ok(out)
}

async fn ensure_lead_flow(
    db: &DatabaseConnection,
    departments: &Depts,
    now: DateTime<Utc>,
) -> Result<Option<i64>> {
    let name = "Wholesale pre-qualification";
    if let Some(flow) = lead_flow::Entity::find()
        .filter(lead_flow::Column::Name.eq(name))
        .one(db)
        .await?
    {
        return Ok(Some(flow.id));
    }
    let questions = json!([
        {"field": "area", "question": "In which city is your shop?"},
        {"field": "budget", "question": "What budget do you have in mind?"},
        {"field": "size", "question": "How many pieces, in which sizes?"},
        {"field": "timing", "question": "When do you need the goods?"},
    ]);
    let flow = lead_flow::ActiveModel {
        name: Set(name.into()),
        department_id: Set(departments.get("Sales").copied()),
        trigger_keywords: Set(json!([
            "ingrosso",
            "preventivo",
            "grossiste",
            "devis",
            "wholesale",
            "quote"
        ])),
        questions: Set(questions),
        is_active: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(Some(flow.id))
}

async fn load_agents(db: &DatabaseConnection, staff: &[user::Model]) -> Result<Vec<Agent>> {
    let members = department_member::Entity::find().all(db).await?;
    let load: Vec<(Option<i64>, i64)> = conversation::Entity::find()
        .select_only()
        .column(conversation::Column::AssigneeId)
        .column_as(conversation::Column::Id.count(), "n")
        .filter(conversation::Column::Status.is_in([CS::Open, CS::Pending]))
        .group_by(conversation::Column::AssigneeId)
        .into_tuple()
        .all(db)
        .await?;
    let load: HashMap<Option<i64>, i64> = load.into_iter().collect();
    Ok(staff
        .iter()
        .filter(|u| u.role == Role::Agent && u.is_active)
        .map(|u| Agent {
            id: u.id,
            departments: members
                .iter()
                .filter(|m| m.user_id == u.id)
                .map(|m| m.department_id)
                .collect(),
            capacity: i64::from(u.max_concurrent),
            load: load.get(&Some(u.id)).copied().unwrap_or(0),
        })
        .collect())
}

/// Shifts over the past weeks (day 09:00–17:00, late 13:00–22:00, lunch/break away),
/// for agents that have none yet; those on shift now are online.
async fn presence(db: &DatabaseConnection, agents: &[Agent], now: DateTime<Utc>) -> Result<()> {
    let mut rows = Vec::new();
    let mut online = Vec::new();
    for (i, agent) in agents.iter().enumerate() {
        if presence_interval::Entity::find()
            .filter(presence_interval::Column::UserId.eq(agent.id))
            .count(db)
            .await?
            > 0
        {
            continue;
        }
        let shift: [(u32, u32, Presence); 3] = if i % 2 == 0 {
            [
                (540, 750, Presence::Online),
                (750, 795, Presence::Away),
                (795, 1020, Presence::Online),
            ]
        } else {
            [
                (780, 1050, Presence::Online),
                (1050, 1080, Presence::Away),
                (1080, 1320, Presence::Online),
            ]
        };
        let today = local(now).date();
        for back in (0..DAYS).rev() {
            let day = today - Duration::days(back);
            if day.weekday().number_from_monday() > 5 + u32::from(i % 3 == 0) {
                continue;
            }
            for &(start, end, status) in &shift {
                let started = from_local(
                    day.and_time(chrono::NaiveTime::MIN) + Duration::minutes(start.into()),
                );
                let ended = from_local(
                    day.and_time(chrono::NaiveTime::MIN) + Duration::minutes(end.into()),
                );
                if started >= now {
                    continue;
                }
                let open = ended > now;
                if open && status == Presence::Online {
                    online.push(agent.id);
                }
                rows.push(presence_interval::ActiveModel {
                    user_id: Set(agent.id),
                    status: Set(status),
                    started_at: Set(started),
                    ended_at: Set((!open).then_some(ended)),
                    ..Default::default()
                });
            }
        }
    }
    insert(db, rows).await?;
    if !online.is_empty() {
        user::Entity::update_many()
            .col_expr(user::Column::Presence, Expr::value(Presence::Online))
            .col_expr(user::Column::LastSeenAt, Expr::value(Some(now)))
            .filter(user::Column::Id.is_in(online))
            .exec(db)
            .await?;
    }
    Ok(())
}

// ---------------------------------------------------------------- conversations

impl Gen {
    /// Start times, oldest first: history over the past weeks, then the live desk.
    fn plan(&mut self, n: usize) -> Vec<(DateTime<Utc>, Live)> {
        let capacity: i64 = self
            .refs
            .agents
            .iter()
            .map(|a| (a.capacity - a.load).max(0))
            .sum();
        let queued = (n / 40).clamp(2, 60).min(n / 3);
        let assigned = (n / 25)
            .clamp(2, 40)
            .min(n / 3)
            .min(capacity.max(0) as usize);
        let pending = assigned.div_ceil(4);
        let mut plans: Vec<_> = (0..n - queued - assigned)
            .map(|_| (self.sample_time(), Live::No))
            .collect();
        plans.sort_by_key(|p| p.0);
        let mut live = Vec::new();
        for i in 0..queued + assigned {
            live.push(match i {
                _ if i < queued => (self.ago(60, 1_500), Live::Queued),
                _ if i < queued + pending => (self.ago(1_200, 10_800), Live::Pending),
                _ => (self.ago(300, 7_200), Live::Assigned),
            });
        }
        live.sort_by_key(|p| p.0);
        plans.extend(live);
        plans
    }

    fn ago(&mut self, min_secs: i64, max_secs: i64) -> DateTime<Utc> {
        self.now - secs(self.rng.random_range(min_secs..max_secs))
    }

    fn sample_time(&mut self) -> DateTime<Utc> {
        let latest = self.now - Duration::hours(3);
        for _ in 0..50 {
            let day = local(self.now).date() - Duration::days(self.rng.random_range(0..DAYS));
            if day.weekday().number_from_monday() > 5 && self.rng.random_bool(0.4) {
                continue;
            }
            let hour = weighted(&mut self.rng, &HOURS) as i64;
            let t = from_local(day.and_time(chrono::NaiveTime::MIN) + Duration::hours(hour))
                + secs(self.rng.random_range(0..3_600));
            if t <= latest && t > self.now - Duration::days(DAYS) {
                return t;
            }
        }
        latest - secs(self.rng.random_range(0..DAYS * 86_400 - 10_800))
    }

    fn person(
        &mut self,
        at: DateTime<Utc>,
        live: Live,
        b: &mut Batch,
    ) -> (Person, bool, Option<usize>) {
        if live == Live::No && !self.recent.is_empty() && self.rng.random_bool(0.22) {
            let i = self.rng.random_range(0..self.recent.len());
            if let Some((p, topic, ended)) = self.recent.get(i).cloned() {
                if ended < at && at - ended < Duration::days(7) {
                    return (p, false, self.rng.random_bool(0.6).then_some(topic));
                }
            }
        }
        let id = self.next_contact;
        self.next_contact += 1;
        let lang = weighted(&mut self.rng, &[50, 35, 15]);
        let channels = self.refs.channels.len().max(1);
        let channel = match lang {
            0 => 0,
            1 => 1,
            _ => self.rng.random_range(0..2),
        }
        .min(channels - 1);
        let (first, last) = (
            FIRST[lang][self.rng.random_range(0..8)],
            LAST[lang][self.rng.random_range(0..8)],
        );
        let vip = self.rng.random_bool(0.05);
        let consent = [
            ConsentState::OptedIn,
            ConsentState::Unknown,
            ConsentState::OptedOut,
        ][weighted(&mut self.rng, &[85, 14, 1])];
        let wa_id = match lang {
            0 => format!("39{}", 3_200_000_000 + id),
            1 => format!("33{}", 600_000_000 + id),
            _ => format!("44{}", 7_400_000_000 + id),
        };
        b.contacts.push(contact::Model {
            id,
            wa_id: Some(wa_id.clone()),
            user_id: None,
            phone: Some(format!("+{wa_id}")),
            name: Some(format!("{first} {last}")),
            profile_name: Some(first.into()),
            language: Some(LANGS[lang].into()),
            priority: if vip {
                Priority::High
            } else {
                Priority::Normal
            },
            is_vip: vip,
            consent,
            consent_changed_at: (consent != ConsentState::Unknown).then_some(at),
            fields: json!({"city": CITIES[lang][self.rng.random_range(0..4)]}),
            external_id: self.rng.random_bool(0.3).then(|| format!("CRM-{id}")),
            last_inbound_at: Some(at),
            erased_at: None,
            created_at: at,
            updated_at: at,
        });
        if vip {
            self.tag_contact(b, id, "vip");
        }
        let person = Person {
            id,
            channel,
            lang,
            first,
            vip,
            automated: consent != ConsentState::OptedOut,
        };
        (person, true, None)
    }

    fn pick_agent(&mut self, department: Option<i64>, not: Option<i64>, live: bool) -> Option<i64> {
        let fits = |a: &Agent| Some(a.id) != not && (!live || a.load < a.capacity);
        let mut pool: Vec<usize> = (0..self.refs.agents.len())
            .filter(|&i| {
                fits(&self.refs.agents[i])
                    && department.is_none_or(|d| self.refs.agents[i].departments.contains(&d))
            })
            .collect();
        if pool.is_empty() {
            pool = (0..self.refs.agents.len())
                .filter(|&i| fits(&self.refs.agents[i]))
                .collect();
        }
        let agent = self
            .refs
            .agents
            .get_mut(*pool.get(self.rng.random_range(0..pool.len().max(1)))?)?;
        agent.load += i64::from(live);
        Some(agent.id)
    }

    fn conversation(&mut self, at: DateTime<Utc>, live: Live, b: &mut Batch) {
        let (person, fresh, same_topic) = self.person(at, live, b);
        let ti = same_topic.unwrap_or_else(|| weighted(&mut self.rng, &TOPICS.map(|t| t.weight)));
        let topic = &TOPICS[ti];
        let id = self.next_conversation;
        self.next_conversation += 1;
        let (channel_id, price) = self
            .refs
            .channels
            .get(person.channel)
            .copied()
            .unwrap_or((0, 8_000));
        let mut department = self.refs.departments.get(topic.department).copied();
        let priority =
            if person.vip || (topic.key == "price_complaint" && self.rng.random_bool(0.5)) {
                Priority::High
            } else {
                [Priority::Low, Priority::Normal, Priority::Urgent]
                    [weighted(&mut self.rng, &[10, 86, 4])]
            };
        let (policy, frt, res) = self.refs.policies[match priority {
            Priority::Low => 0,
            Priority::Normal => 1,
            Priority::High => 2,
            Priority::Urgent => 3,
        }];
        let start = clock_start(at);
        let (fr_due, warn_at) = (start + secs(frt), start + secs(frt * 8 / 10));
        let minute = {
            let l = local(at);
            l.hour() * 60 + l.minute()
        };
        let weekday = local(at).weekday().number_from_monday() <= 5;
        let night = !(480..1320).contains(&minute);
        let bot_only =
            live == Live::No && topic.faq && person.automated && self.rng.random_bool(0.3);
        let rule_kind = if !person.automated {
            None
        } else if bot_only {
            Some(topic.key)
        } else if night {
            Some("offline")
        } else if weekday && (690..780).contains(&minute) {
            Some("lunch")
        } else if fresh || live == Live::Queued {
            Some("welcome")
        } else {
            None
        };
        let rule = rule_kind.and_then(|k| self.refs.rules.get(&(k, person.lang)).copied());
        let v = [
            person.first.to_string(),
            format!(
                "#{}{}",
                ["IT", "FR", "UK"][person.lang],
                self.rng.random_range(40_000..99_999)
            ),
            SKUS[self.rng.random_range(0..SKUS.len())].to_string(),
            format!("JD{:010}", self.rng.random_range(0..9_999_999_999i64)),
        ];
        let fill = |s: &str| {
            s.replace("{name}", &v[0])
                .replace("{order}", &v[1])
                .replace("{sku}", &v[2])
                .replace("{track}", &v[3])
        };
        let variant = self.rng.random_range(0..2);

        // Who answers, and when the first human answer comes.
        let scale = frt as f64 / 600.0;
        let bucket = [(15, 120), (120, 360), (360, 600), (600, 2_400)]
            [weighted(&mut self.rng, &[60, 25, 10, 5])];
        let mut first_agent =
            at + secs((self.rng.random_range(bucket.0..bucket.1) as f64 * scale) as i64);
        if night && start + secs(frt) < self.now - Duration::hours(3) {
            first_agent = first_agent.max(start + secs(self.rng.random_range(30..frt * 7 / 10)));
        }
        let total = if bot_only {
            3
        } else if live == Live::Queued {
            self.rng.random_range(2..4)
        } else if live == Live::Assigned || live == Live::Pending {
            self.rng.random_range(2..8)
        } else {
            (2 + weighted(&mut self.rng, &[6, 8, 12, 14, 14, 12, 10, 8, 6, 5, 5]))
                .max(if rule.is_some() { 4 } else { 2 })
        };
        let escalated =
            live == Live::No && !bot_only && first_agent > warn_at && self.rng.random_bool(0.5);
        let agent_a = if bot_only || live == Live::Queued {
            None
        } else {
            self.pick_agent(department, None, live != Live::No)
        };
        let mut agent_b = agent_a;
        let transfer_at = self.rng.random_range(4..total.max(5));
        let transferred = live == Live::No
            && agent_a.is_some()
            && !escalated
            && total >= 6
            && self.rng.random_bool(0.06);
        let mut new_department = department;
        if escalated || transferred {
            if transferred {
                let other =
                    TOPICS[(ti + self.rng.random_range(1..TOPICS.len())) % TOPICS.len()].department;
                new_department = self.refs.departments.get(other).copied();
            }
            agent_b = self.pick_agent(new_department, agent_a, false).or(agent_a);
            first_agent = first_agent.max(warn_at + secs(self.rng.random_range(20..120)));
        }

        // The messages, alternating customer and business.
        let conv = (id, channel_id, price);
        let mut t = at;
        let (mut first_response, mut responded_by_human, mut transfer_time) = (None, false, None);
        let (mut last_inbound, mut last_outbound) = (at, None);
        let first_msg = b.messages.len();
        for i in 0..total {
            let last = i + 1 == total;
            if i % 2 == 0 {
                let body = if i == 0 {
                    fill(topic.ask[person.lang][variant])
                } else if last {
                    THANKS[person.lang][self.rng.random_range(0..2)].into()
                } else if i == 2 && rule.is_some() {
                    fill(DETAILS[person.lang])
                } else {
                    FOLLOW[person.lang][self.rng.random_range(0..3)].into()
                };
                if i > 0 {
                    t += secs(self.rng.random_range(20..300));
                }
                let image = topic.key == "return" && variant == 1 && i == 2;
                self.message(
                    b,
                    conv,
                    t,
                    None,
                    body,
                    if image {
                        MessageType::Image
                    } else {
                        MessageType::Text
                    },
                    None,
                );
                last_inbound = t;
            } else if i == 1 && rule.is_some() {
                let Some((rule_id, def)) = rule else { continue };
                let n = self.rng.random_range(0..def.5.len());
                t += secs(self.rng.random_range(2..6));
                let kind = if def.6.is_empty() {
                    MessageType::Text
                } else {
                    MessageType::Interactive
                };
                self.message(
                    b,
                    conv,
                    t,
                    Some((SenderKind::Bot, None)),
                    fill(def.5[n]),
                    kind,
                    Some((rule_id, n as i32, def.6)),
                );
                if bot_only {
                    first_response = Some(t);
                }
                last_outbound = Some(t);
            } else {
                if live == Live::Queued || bot_only {
                    break;
                }
                let sender = if escalated || (transferred && i >= transfer_at) {
                    agent_b
                } else {
                    agent_a
                };
                t = if responded_by_human {
                    t + secs(self.rng.random_range(20..240))
                } else {
                    first_agent.max(t + secs(10))
                };
                if transferred && i >= transfer_at && transfer_time.is_none() {
                    transfer_time = Some(t - secs(30));
                }
                let body = if !responded_by_human {
                    fill(topic.answer[person.lang][variant])
                } else if i + 2 >= total {
                    BYE[person.lang].into()
                } else {
                    MORE[person.lang][self.rng.random_range(0..2)].into()
                };
                self.message(
                    b,
                    conv,
                    t,
                    Some((SenderKind::Agent, sender)),
                    body,
                    MessageType::Text,
                    None,
                );
                if !responded_by_human {
                    first_response = Some(t);
                }
                responded_by_human = true;
                last_outbound = Some(t);
            }
        }
        // The live desk cannot have messages from the future; pending waits on the customer.
        if live != Live::No {
            let cut = self.now - secs(5);
            let drop = |m: &message::Model| {
                m.created_at > cut || (live == Live::Pending && m.direction == Direction::Inbound)
            };
            while b.messages.len() > first_msg + 1 && b.messages.last().is_some_and(drop) {
                // Ledger rows are pushed in message order: a billed message owns the last one.
                if b.messages.pop().is_some_and(|m| m.cost_micros.is_some()) {
                    b.ledger.pop();
                }
            }
            first_response = first_response.filter(|f| *f <= cut);
            last_outbound = b.messages[first_msg..]
                .iter()
                .rev()
                .find(|m| m.direction == Direction::Outbound)
                .map(|m| m.created_at);
            last_inbound = b.messages[first_msg..]
                .iter()
                .rev()
                .find(|m| m.direction == Direction::Inbound)
                .map_or(at, |m| m.created_at);
        }
        let last_message = b
            .messages
            .get(first_msg..)
            .and_then(|m| m.last())
            .map_or(at, |m| m.created_at);
        let status = match live {
            Live::No => CS::Resolved,
            Live::Pending
                if last_outbound.is_some_and(|o| o >= last_inbound) && first_response.is_some() =>
            {
                CS::Pending
            }
            _ => CS::Open,
        };
        let resolved_at = (live == Live::No).then(|| {
            (last_message + secs(self.rng.random_range(60..1_200))).min(self.now - secs(60))
        });
        let closed_at = resolved_at
            .map(|r| r + Duration::hours(24))
            .filter(|c| *c < self.now && self.rng.random_bool(0.6));
        let assignee = agent_b;
        let queued_at = (!bot_only).then(|| at + secs(if rule.is_some() { 6 } else { 1 }));
        let assigned_at = queued_at.filter(|_| assignee.is_some()).map(|q| {
            let until = first_response.unwrap_or(self.now).max(q + secs(2));
            let frac = if escalated {
                0.05
            } else {
                self.rng.random_range(0.1..0.7)
            };
            q + secs(((until - q).num_seconds() as f64 * frac) as i64)
        });

        // History, SLA, survey, note, tags.
        let assign = |kind,
                      from: Option<i64>,
                      to: Option<i64>,
                      from_d: Option<i64>,
                      to_d: Option<i64>,
                      reason: &str,
                      actor: Option<i64>,
                      when| assignment::ActiveModel {
            conversation_id: Set(id),
            kind: Set(kind),
            from_user_id: Set(from),
            to_user_id: Set(to),
            from_department_id: Set(from_d),
            to_department_id: Set(to_d),
            reason: Set(Some(reason.into())),
            actor_id: Set(actor),
            created_at: Set(when),
            ..Default::default()
        };
        if let (Some(q), Some(a)) = (queued_at, assigned_at) {
            let (kind, actor) = [
                (AK::Auto, None),
                (AK::Claim, agent_a),
                (AK::Manual, self.refs.editor),
            ][weighted(&mut self.rng, &[80, 12, 8])];
            b.assignments.push(assign(
                kind,
                None,
                agent_a,
                None,
                department,
                "routing",
                actor,
                a.max(q),
            ));
        } else if let Some(q) = queued_at {
            b.assignments.push(assign(
                AK::Auto,
                None,
                None,
                None,
                department,
                "no agent available: queued",
                None,
                q,
            ));
        }
        if escalated {
            b.assignments.push(assign(
                AK::Escalation,
                agent_a,
                agent_b,
                department,
                department,
                "first response at 80% of the SLA target",
                None,
                warn_at,
            ));
        }
        if transferred {
            let when = transfer_time.unwrap_or(last_message);
            b.assignments.push(assign(
                AK::Transfer,
                agent_a,
                agent_b,
                department,
                new_department,
                "needs another team",
                agent_a,
                when,
            ));
            department = new_department;
        }
        let mut sla =
            |kind, level, target: DateTime<Utc>, occurred: DateTime<Utc>, late: Option<i64>| {
                b.sla.push(sla_event::ActiveModel {
                    conversation_id: Set(id),
                    kind: Set(kind),
                    level: Set(level),
                    target_at: Set(target),
                    occurred_at: Set(occurred),
                    late_secs: Set(late),
                    details: Set(Some(json!({"priority": priority, "topic": topic.key}))),
                    ..Default::default()
                })
            };
        if !bot_only {
            let answered = first_response.unwrap_or(self.now);
            if answered > warn_at && warn_at < self.now {
                sla(
                    SlaKind::FirstResponse,
                    SlaLevel::Warning,
                    fr_due,
                    warn_at,
                    None,
                );
            }
            if escalated {
                sla(
                    SlaKind::FirstResponse,
                    SlaLevel::Escalation,
                    fr_due,
                    warn_at,
                    None,
                );
            }
            if answered > fr_due && fr_due < self.now {
                sla(
                    SlaKind::FirstResponse,
                    SlaLevel::Breach,
                    fr_due,
                    fr_due,
                    Some((answered - fr_due).num_seconds()),
                );
            }
            if live == Live::Queued
                && priority >= Priority::High
                && self.now - at > Duration::minutes(5)
            {
                sla(
                    SlaKind::ImportantWait,
                    SlaLevel::Alert,
                    at + Duration::minutes(5),
                    at + Duration::minutes(5),
                    None,
                );
            }
        }
        let (mut csat, mut nps) = (None, None);
        if let Some(resolved) = resolved_at
            && person.automated
            && assignee.is_some()
        {
            let answer = self.survey(
                b,
                id,
                &person,
                assignee,
                SurveyKind::Csat,
                resolved + secs(30),
                &[4, 4, 9, 28, 55],
                1,
                0.55,
            );
            csat = answer.map(|a| a.0);
            if let Some((_, answered)) = answer
                && self.rng.random_bool(0.6)
            {
                nps = self
                    .survey(
                        b,
                        id,
                        &person,
                        assignee,
                        SurveyKind::Nps,
                        answered + secs(10),
                        &[1, 1, 1, 1, 1, 2, 3, 6, 12, 20, 22],
                        0,
                        0.8,
                    )
                    .map(|a| a.0);
            }
        }
        if let (Some(author), Some(f), true) = (
            assignee,
            first_response.filter(|f| responded_by_human && *f + secs(45) < self.now),
            self.rng.random_bool(0.25),
        ) {
            let l = local(f);
            let body = format!(
                "{:02}:{:02} | {} | {}",
                l.hour(),
                l.minute(),
                topic.key,
                topic.progress[self.rng.random_range(0..2)]
            );
            b.notes.push(note::ActiveModel {
                conversation_id: Set(id),
                author_id: Set(author),
                body: Set(body),
                created_at: Set(f + secs(45)),
                ..Default::default()
            });
        }
        let mut tags = vec![];
        match topic.key {
            "size" => tags.push("size-question"),
            "return" if variant == 1 => tags.extend(["damaged", "refund"]),
            "return" if self.rng.random_bool(0.5) => tags.push("refund"),
            "invoice" => tags.push("invoice-request"),
            "price_complaint" => tags.push("complaint"),
            "purchase" if self.rng.random_bool(0.2) => tags.push("pre-order"),
            _ => {}
        }
        if same_topic.is_some() {
            tags.push("repeat");
        }
        if person.vip {
            tags.push("vip");
        }
        for name in tags {
            if let Some(&tag_id) = self.refs.tags.get(name) {
                b.conversation_tags.push(conversation_tag::ActiveModel {
                    conversation_id: Set(id),
                    tag_id: Set(tag_id),
                });
            }
        }
        let converts = match topic.key {
            "purchase" => 0.45,
            "size" => 0.2,
            _ => 0.0,
        };
        let converted_at = resolved_at
            .filter(|_| self.rng.random_bool(converts))
            .map(|r| r - secs(self.rng.random_range(30..300)));
        if let (Some(flow), "purchase", 1) = (self.refs.flow, topic.key, variant) {
            let done = live == Live::No;
            b.runs.push(lead_flow_run::ActiveModel {
                flow_id: Set(flow), conversation_id: Set(id), step: Set(if done { 4 } else { 2 }),
                answers: Set(if done { json!({"area": CITIES[person.lang][0], "budget": "2000-5000 EUR", "size": "20 pcs S-XL", "timing": "next month"}) } else { json!({"area": CITIES[person.lang][1], "budget": "1000 EUR"}) }),
                status: Set(if done { FlowRunStatus::Completed } else { FlowRunStatus::Active }),
                created_at: Set(at + secs(5)), updated_at: Set(if done { at + secs(240) } else { at + secs(60) }), ..Default::default()
            });
        }
        if fresh {
            if let Some(c) = b.contacts.last_mut() {
                c.last_inbound_at = Some(last_inbound);
                c.updated_at = last_inbound;
            }
        }
        if let Some(r) = resolved_at {
            self.recent.push_back((person.clone(), ti, r));
            if self.recent.len() > 500 {
                self.recent.pop_front();
            }
        }
        let end = closed_at.or(resolved_at).unwrap_or(last_message);
        b.conversations.push(conversation::Model {
            id,
            channel_id,
            contact_id: person.id,
            status: if closed_at.is_some() {
                CS::Closed
            } else {
                status
            },
            priority,
            topic: Some(topic.key.into()),
            language: Some(LANGS[person.lang].into()),
            department_id: department,
            assignee_id: assignee,
            lock_holder_id: None,
            lock_acquired_at: None,
            lock_last_activity_at: None,
            lock_expires_at: None,
            sla_policy_id: policy,
            first_response_due_at: Some(fr_due),
            resolution_due_at: Some(start + secs(res)),
            sla_paused_at: (status == CS::Pending).then_some(last_outbound).flatten(),
            escalation_level: i32::from(escalated),
            transfer_count: i32::from(transferred),
            reopen_count: 0,
            queued_at,
            assigned_at,
            first_response_at: first_response,
            resolved_at,
            closed_at,
            last_message_at: Some(last_message),
            last_inbound_at: Some(last_inbound),
            csat,
            nps,
            converted_at,
            conversion_amount_micros: converted_at
                .map(|_| self.rng.random_range(39..450) * 1_000_000),
            archived_at: None,
            created_at: at,
            updated_at: end,
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn message(
        &mut self,
        b: &mut Batch,
        (conv, channel, price): (i64, i64, i64),
        at: DateTime<Utc>,
        sender: Option<(SenderKind, Option<i64>)>,
        body: String,
        kind: MessageType,
        rule: Option<(i64, i32, &[&str])>,
    ) {
        let id = self.next_message;
        self.next_message += 1;
        let mut m = message::Model {
            id,
            conversation_id: conv,
            channel_id: channel,
            direction: Direction::Inbound,
            sender_kind: SenderKind::Customer,
            sender_user_id: None,
            message_type: kind,
            body: Some(body),
            media: None,
            payload: None,
            wa_message_id: Some(format!("wamid.DEMO{id:014}")),
            context_wa_id: None,
            status: DS::Received,
            error_code: None,
            error_title: None,
            sent_at: None,
            delivered_at: None,
            read_at: None,
            failed_at: None,
            auto_rule_id: None,
            auto_variant: None,
            cost_micros: None,
            created_at: at,
        };
        if kind == MessageType::Image {
            m.media = Some(
                json!({"id": format!("demo-media-{id}"), "mime_type": "image/jpeg", "caption": m.body}),
            );
        }
        let Some((sender_kind, user)) = sender else {
            b.messages.push(m);
            return;
        };
        m.direction = Direction::Outbound;
        m.sender_kind = sender_kind;
        m.sender_user_id = user;
        if let Some((rule_id, variant, buttons)) = rule {
            (m.auto_rule_id, m.auto_variant) = (Some(rule_id), Some(variant));
            if !buttons.is_empty() {
                m.payload = Some(json!({"type": "button", "buttons": buttons}));
            }
        }
        let delivered = at + secs(self.rng.random_range(1..5));
        let read = delivered + secs(self.rng.random_range(5..600));
        m.sent_at = Some(at);
        m.status = [DS::Failed, DS::Sent, DS::Delivered, DS::Read]
            [weighted(&mut self.rng, &[1, 4, 18, 77])];
        if m.status == DS::Read && read > self.now {
            m.status = DS::Delivered;
        }
        match m.status {
            DS::Failed => {
                (m.error_code, m.error_title, m.failed_at) = (
                    Some(131_026),
                    Some("Message undeliverable".into()),
                    Some(delivered),
                )
            }
            DS::Read => (m.delivered_at, m.read_at) = (Some(delivered), Some(read)),
            DS::Delivered => m.delivered_at = Some(delivered),
            _ => {}
        }
        if m.status != DS::Failed {
            // The first 1,000 messages a month per number are free.
            let period = at.format("%Y-%m").to_string();
            let count = self.billed.entry((channel, period.clone())).or_insert(0);
            *count += 1;
            let free = *count <= 1_000;
            let base = if free { 0 } else { price };
            m.cost_micros = Some(base);
            b.ledger.push(billing_ledger::ActiveModel {
                message_id: Set(id),
                channel_id: Set(channel),
                conversation_id: Set(conv),
                period: Set(period),
                region: Set(if price == 5_000 { "asia" } else { "europe" }.into()),
                free: Set(free),
                base_micros: Set(base),
                surcharge_micros: Set(0),
                total_micros: Set(base),
                created_at: Set(at),
                ..Default::default()
            });
        }
        b.messages.push(m);
    }

    /// Sends a survey; returns the score and its time when the customer answers.
    #[allow(clippy::too_many_arguments)]
    fn survey(
        &mut self,
        b: &mut Batch,
        conv: i64,
        person: &Person,
        agent: Option<i64>,
        kind: SurveyKind,
        sent: DateTime<Utc>,
        weights: &[u32],
        min: i32,
        answer_rate: f64,
    ) -> Option<(i32, DateTime<Utc>)> {
        let answered_at = Some(sent + secs(self.rng.random_range(30..5_400)))
            .filter(|a| *a < self.now && self.rng.random_bool(answer_rate));
        let score = answered_at.map(|_| weighted(&mut self.rng, weights) as i32 + min);
        let expires = sent + Duration::hours(24);
        let status = if score.is_some() {
            SurveyStatus::Answered
        } else if expires < self.now {
            SurveyStatus::Expired
        } else {
            SurveyStatus::Sent
        };
        b.surveys.push(survey::ActiveModel {
            conversation_id: Set(conv),
            contact_id: Set(person.id),
            agent_id: Set(agent),
            kind: Set(kind),
            round: Set(0),
            status: Set(status),
            score: Set(score),
            raw_answer: Set(score.map(|s| s.to_string())),
            sent_at: Set(sent),
            answered_at: Set(answered_at),
            expires_at: Set(expires),
            ..Default::default()
        });
        score.zip(answered_at)
    }

    fn tag_contact(&self, b: &mut Batch, contact: i64, name: &str) {
        if let Some(&tag_id) = self.refs.tags.get(name) {
            b.contact_tags.push(contact_tag::ActiveModel {
                contact_id: Set(contact),
                tag_id: Set(tag_id),
            });
        }
    }
}

impl Batch {
    async fn flush(self, db: &DatabaseConnection) -> Result<()> {
        let txn = db.begin().await?;
        insert(&txn, active::<contact::ActiveModel, _>(self.contacts)).await?;
        insert(
            &txn,
            active::<conversation::ActiveModel, _>(self.conversations),
        )
        .await?;
        insert(&txn, active::<message::ActiveModel, _>(self.messages)).await?;
        insert(&txn, self.ledger).await?;
        insert(&txn, self.surveys).await?;
        insert(&txn, self.notes).await?;
        insert(&txn, self.assignments).await?;
        insert(&txn, self.sla).await?;
        insert(&txn, self.conversation_tags).await?;
        insert(&txn, self.contact_tags).await?;
        insert(&txn, self.runs).await?;
        txn.commit().await?;
        Ok(())
    }
}

// ---------------------------------------------------------------- helpers

fn active<A: ActiveModelTrait, M: IntoActiveModel<A>>(rows: Vec<M>) -> Vec<A> {
    rows.into_iter()
        .map(IntoActiveModel::into_active_model)
        .collect()
}

/// Multi-row inserts, as many rows per statement as the bind-parameter limit allows.
async fn insert<A: ActiveModelTrait + Send>(db: &impl ConnectionTrait, rows: Vec<A>) -> Result<()> {
    let columns = <<A::Entity as EntityTrait>::Column as Iterable>::iter()
        .count()
        .max(1);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(MAX_PARAMS / columns).collect();
        <A::Entity as EntityTrait>::insert_many(chunk)
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Reserves `count` ids of `table` and returns the first. On PostgreSQL the
/// sequence moves past the block, so later inserts by the server cannot collide.
async fn reserve_ids(db: &DatabaseConnection, table: &str, count: i64) -> Result<i64> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'), GREATEST(nextval(pg_get_serial_sequence('{table}', 'id')), \
             (SELECT COALESCE(MAX(id), 0) FROM {table})) + {count}) - {count} + 1 AS first"
        ),
        _ => format!("SELECT COALESCE(MAX(id), 0) + 1 AS first FROM {table}"),
    };
    let row = db
        .query_one_raw(Statement::from_string(backend, sql))
        .await?
        .context("no row from id reservation")?;
    Ok(row.try_get::<i64>("", "first")?)
}

fn weighted(rng: &mut StdRng, weights: &[u32]) -> usize {
    let mut roll = rng.random_range(0..weights.iter().sum::<u32>().max(1));
    for (i, w) in weights.iter().enumerate() {
        if roll < *w {
            return i;
        }
        roll -= w;
    }
    0
}

fn secs(s: i64) -> Duration {
    Duration::seconds(s)
}

/// Europe/Rome's offset: CEST from the last Sunday of March to the last Sunday of October.
fn rome_offset(at: DateTime<Utc>) -> Duration {
    let last_sunday = |month| {
        NaiveDate::from_ymd_opt(at.year(), month, 31)
            .map(|d| d - Duration::days(d.weekday().num_days_from_sunday().into()))
    };
    let summer = matches!((last_sunday(3), last_sunday(10)), (Some(s), Some(e)) if at.date_naive() >= s && at.date_naive() < e);
    Duration::hours(if summer { 2 } else { 1 })
}

fn local(at: DateTime<Utc>) -> NaiveDateTime {
    at.naive_utc() + rome_offset(at)
}

fn from_local(naive: NaiveDateTime) -> DateTime<Utc> {
    let guess = naive.and_utc();
    guess - rome_offset(guess)
}

/// When the SLA clock starts: at once inside business hours (Mon–Fri 09:00–18:00
/// Rome), else at the next opening.
fn clock_start(at: DateTime<Utc>) -> DateTime<Utc> {
    let l = local(at);
    let minute = l.hour() * 60 + l.minute();
    let open_day = |d: NaiveDate| !matches!(d.weekday(), Weekday::Sat | Weekday::Sun);
    if open_day(l.date()) && (540..1080).contains(&minute) {
        return at;
    }
    let mut day = if open_day(l.date()) && minute < 540 {
        l.date()
    } else {
        l.date() + Duration::days(1)
    };
    while !open_day(day) {
        day += Duration::days(1);
    }
    from_local(day.and_time(chrono::NaiveTime::MIN) + Duration::hours(9))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use domain::SystemClock;
    use migration::{Migrator, MigratorTrait};

    use super::*;
    use crate::config::Config;

    async fn count<E: EntityTrait>(db: &DatabaseConnection) -> u64
    where
        E::Model: Sync,
    {
        E::find().count(db).await.unwrap()
    }

    #[tokio::test]
    async fn demo_fills_the_desk_and_can_run_twice() {
        let (db, _) = crate::db::connect("sqlite::memory:", 1).await.unwrap();
        Migrator::up(&db, None).await.unwrap();
        let config = crate::startup::domain_config(&Config::default());
        let domain = Domain::new(
            db,
            Arc::new(SystemClock),
            Arc::new(domain::events::NoEvents),
            config,
        );
        domain
            .ensure_initial_admin("admin@example.com", Some("admin-password-1"))
            .await
            .unwrap();

        let summary = run(&domain, 50).await.unwrap();
        assert!(summary.contains("50 conversations"), "{summary}");
        let db = &domain.db;
        assert_eq!(count::<conversation::Entity>(db).await, 50);
        assert!(count::<message::Entity>(db).await > 100);
        assert!(count::<billing_ledger::Entity>(db).await > 0);
        assert!(count::<user::Entity>(db).await >= 10);
        assert!(count::<assignment::Entity>(db).await > 0);
        let convs = conversation::Entity::find().all(db).await.unwrap();
        assert!(
            convs
                .iter()
                .any(|c| c.status == CS::Open && c.assignee_id.is_none() && c.queued_at.is_some())
        );
        assert!(
            convs.iter().any(|c| c.status == CS::Open
                && c.assignee_id.is_some()
                && c.assigned_at.is_some())
        );
        assert!(
            convs
                .iter()
                .any(|c| matches!(c.status, CS::Resolved | CS::Closed) && c.csat.is_some())
        );
        let answered = survey::Entity::find()
            .filter(survey::Column::Status.eq(SurveyStatus::Answered))
            .count(db)
            .await
            .unwrap();
        assert_eq!(
            answered as usize,
            convs
                .iter()
                .map(|c| usize::from(c.csat.is_some()) + usize::from(c.nps.is_some()))
                .sum::<usize>()
        );
        let messages = message::Entity::find().all(db).await.unwrap();
        for c in &convs {
            let mine: Vec<_> = messages
                .iter()
                .filter(|m| m.conversation_id == c.id)
                .collect();
            assert!(!mine.is_empty());
            assert!(mine.iter().all(|m| m.created_at <= domain.clock.now()));
            assert_eq!(c.last_message_at, mine.iter().map(|m| m.created_at).max());
            if let (Some(f), Some(r)) = (c.first_response_at, c.resolved_at) {
                assert!(c.created_at <= f && f <= r, "conversation {}", c.id);
            }
        }

        run(&domain, 50).await.unwrap();
        assert_eq!(count::<conversation::Entity>(db).await, 100);
        assert_eq!(count::<department::Entity>(db).await, 5);
        assert_eq!(count::<channel::Entity>(db).await, 2);
        let mut open = HashSet::new();
        let convs = conversation::Entity::find()
            .filter(conversation::Column::Status.is_in([CS::Open, CS::Pending]))
            .all(db)
            .await
            .unwrap();
        assert!(
            convs
                .iter()
                .all(|c| open.insert((c.contact_id, c.channel_id)))
        );
        for agent in user::Entity::find()
            .filter(user::Column::Role.eq(Role::Agent))
            .all(db)
            .await
            .unwrap()
        {
            let load = convs
                .iter()
                .filter(|c| c.assignee_id == Some(agent.id))
                .count() as i32;
            assert!(load <= agent.max_concurrent, "{} has {load}", agent.email);
        }
    }
}
