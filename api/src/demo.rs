//! `helpdesk demo`: fills the database with a realistic WhatsApp support desk so
//! that every query and metric has something to show: an Italian and a French
//! number, five departments, staff, tags, canned responses, auto-reply rules, SLA
//! policies, business hours, and `n` conversations over the past six weeks.
//!
//! Reference rows are looked up by their unique name first, so the command can
//! run twice. Contacts, conversations and messages take ids from a block reserved
//! up front and go in multi-row inserts, one transaction per chunk of
//! conversations: run it against an idle database (server stopped or quiet).

use std::collections::{HashMap, HashSet, VecDeque};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use domain::staff::StaffForCreate;
use domain::{Actor, Domain};
use entity::{
    AssignmentKind as AK, ConsentState, ConversationStatus as CS, DeliveryStatus as DS, Direction,
    FlowRunStatus, MessageType, Presence, Priority, Role, SenderKind, SlaKind, SlaLevel,
    SurveyKind, SurveyStatus, assignment, auto_reply_rule, billing_ledger, business_hours,
    canned_response, channel, contact, contact_tag, conversation, conversation_tag, department,
    department_member, holiday, lead_flow, lead_flow_run, message, note, presence_interval,
    sla_event, sla_policy, survey, tag, user,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection,
    DbBackend, EntityTrait, IdenStatic, IntoActiveModel, Iterable, PaginatorTrait, QueryFilter,
    QuerySelect, Set, Statement, TransactionTrait, TryIntoModel,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// The password of every staff member the demo creates.
pub const DEMO_PASSWORD: &str = "demo-password-1";
const DAYS: i64 = 42;
/// Conversations per transaction.
const CHUNK: usize = 1_000;
const MAX_MESSAGES: usize = 12;
const LANGS: [&str; 3] = ["it", "fr", "en"];
/// Texts or rules for every language.
const ANY: usize = 3;
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
const CITIES: [[&str; 3]; 3] = [
    ["Milano", "Roma", "Torino"],
    ["Paris", "Lyon", "Lille"],
    ["London", "Dublin", "Leeds"],
];
const SKUS: [&str; 4] = [
    "GIACCA-ROMA",
    "BLAZER-NICE",
    "TRENCH-MILANO",
    "SNEAKER-LIDO",
];
/// Relative volume by hour, Rome time: peaks 10–12 and 20–22.
const HOURS: [u32; 24] = [
    1, 1, 1, 1, 1, 1, 2, 4, 7, 10, 15, 15, 11, 8, 8, 8, 8, 7, 7, 9, 14, 14, 6, 2,
];
/// (topic, department, weight, answered by a keyword FAQ rule of the same kind)
const TOPICS: [(&str, &str, u32, bool); 7] = [
    ("logistics", "Logistics", 30, true),
    ("return", "Returns", 22, false),
    ("size", "Sales", 15, true),
    ("invoice", "Billing", 12, false),
    ("technical", "Technical", 8, false),
    ("purchase", "Sales", 10, false),
    ("price_complaint", "Sales", 3, false),
];

/// name | routing | description | keywords
const DEPARTMENTS: &str = "
Returns   | smart       | Returns, exchanges, refunds  | reso, resi, rimborso, danneggiato, retour, remboursement, abîmé, return, refund, damaged, devolución
Logistics | smart       | Shipping, delivery, tracking | spedizione, consegna, corriere, livraison, colis, suivi, delivery, shipping, tracking, parcel, envío
Billing   | round_robin | Invoices and payments        | fattura, pagamento, addebito, facture, paiement, débité, invoice, payment, charged, factura
Sales     | round_robin | Sizes, stock, quotes, orders | taglia, preventivo, disponibile, taille, devis, disponible, size, stock, quote, talla, precio
Technical | smart       | Accounts, website and app    | password, accesso, codice, connexion, compte, login, account, bug, app";

/// login (@helpdesk.demo) | name | role | capacity | skills | departments
const STAFF: &str = "
giulia.conti   | Giulia Conti   | editor  | 3 |                    | Returns, Logistics, Billing, Sales, Technical
paul.lefevre   | Paul Lefèvre   | analyst | 3 |                    |
marco.rossi    | Marco Rossi    | agent   | 3 | logistics, returns | Logistics, Returns
chiara.bianchi | Chiara Bianchi | agent   | 2 | billing            | Billing
luca.ferrari   | Luca Ferrari   | agent   | 3 | technical          | Technical
sofia.romano   | Sofia Romano   | agent   | 3 | sales              | Sales
camille.martin | Camille Martin | agent   | 3 | logistics, returns | Logistics, Returns
julien.dubois  | Julien Dubois  | agent   | 2 | technical, billing | Technical, Billing
lea.moreau     | Léa Moreau     | agent   | 3 | sales, billing     | Sales, Billing
emma.wilson    | Emma Wilson    | agent   | 2 | logistics, sales   | Logistics, Sales, Returns";

const TAGS: [(&str, &str); 8] = [
    ("vip", "#d4af37"),
    ("size-question", "#3b82f6"),
    ("damaged", "#ef4444"),
    ("refund", "#f97316"),
    ("repeat", "#a855f7"),
    ("complaint", "#b91c1c"),
    ("invoice-request", "#10b981"),
    ("pre-order", "#0ea5e9"),
];

/// shortcut | department | title | body
const CANNED: &str = "
/ciao     |           | Saluto              | Ciao {name}, sono {agent} del servizio clienti: come posso aiutarti?
/bonjour  |           | Salutation          | Bonjour {name}, ici {agent} du service client : comment puis-je vous aider ?
/hello    |           | Greeting            | Hi {name}, this is {agent} from customer care: how can I help?
/reso     | Returns   | Etichetta di reso   | Ti ho inviato l'etichetta di reso prepagata via email: consegna il pacco entro 14 giorni.
/retour   | Returns   | Étiquette de retour | Votre étiquette de retour prépayée vous a été envoyée par e-mail. Remboursement sous 5 jours.
/tracking | Logistics | Tracking            | Here is your tracking link: https://shop.example/track/{order}
/fattura  | Billing   | Fattura inviata     | La fattura dell'ordine {order} è stata inviata al tuo indirizzo email.
/taglie   | Sales     | Guida taglie        | Guida taglie: https://shop.example/taglie. Tra due taglie consigliamo la più grande.
/grazie   |           | Chiusura            | Grazie per averci contattato! Siamo qui lun–ven 9–18.";

/// name | kind | trigger | language (* = any) | keywords | buttons. The variants
/// are the `<kind> bot <language>` lines of TEXTS.
const RULES: &str = "
Benvenuto      | welcome   | first_contact | it |                                        |
Bienvenue      | welcome   | first_contact | fr |                                        |
Welcome        | welcome   | first_contact | en |                                        |
Fuori orario   | offline   | offline       | it |                                        |
Hors horaires  | offline   | offline       | fr |                                        |
Out of hours   | offline   | offline       | en |                                        |
FAQ spedizioni | logistics | keyword       | it | spedizione, consegna, tracking, corriere | Traccia ordine, Parla con noi
FAQ livraison  | logistics | keyword       | fr | livraison, colis, suivi, expédition    | Suivre ma commande, Parler à un agent
FAQ shipping   | logistics | keyword       | en | delivery, shipping, tracking, parcel   | Track my order, Talk to an agent
FAQ taglie     | size      | keyword       | it | taglia, taglie, misura                 | Guida taglie, Verifica stock, Parla con noi
FAQ tailles    | size      | keyword       | fr | taille, tailles, pointure              | Guide des tailles, Vérifier le stock, Parler à un agent
FAQ sizes      | size      | keyword       | en | size, sizes, fit                       | Size guide, Check stock, Talk to an agent
Pausa pranzo   | lunch     | scheduled     | *  |                                        |";

/// topic kind language | text. `ask` and `answer` go by pairs (same index);
/// `*` topics are shared; {name} {order} {sku} {track} are filled in.
const TEXTS: &str = "
logistics ask it | Ciao, il mio ordine {order} non è ancora arrivato: mi date il tracking della spedizione?
logistics ask it | Buongiorno, quando arriva la spedizione? Ho ordinato 5 giorni fa.
logistics ask fr | Bonjour, ma commande {order} n'est pas arrivée, vous avez le suivi de livraison ?
logistics ask fr | Bonjour, quel est le délai de livraison pour Lyon ?
logistics ask en | Hi, my order {order} hasn't arrived yet, can I have the tracking number?
logistics ask en | Hello, how long does delivery take to London?
logistics answer it | Ecco il tracking BRT: {track}. La consegna è prevista per domani.
logistics answer it | Ho verificato: il pacco è in consegna oggi, riceverai un SMS dal corriere.
logistics answer fr | Voici votre numéro de suivi Colissimo : {track}. Livraison prévue demain.
logistics answer fr | J'ai vérifié : le colis est en cours de livraison aujourd'hui.
logistics answer en | Here is your DHL tracking number: {track}. Delivery is expected tomorrow.
logistics answer en | I checked: the parcel is out for delivery today.
logistics note * | tracking sent
logistics note * | carrier contacted
return ask it | Vorrei fare un reso per l'ordine {order}, la taglia non va bene.
return ask it | Il prodotto è arrivato danneggiato, come faccio il reso?
return ask fr | Bonjour, je voudrais faire un retour pour la commande {order}.
return ask fr | Le produit est arrivé abîmé, comment faire un retour ?
return ask en | I'd like to return order {order}, it doesn't fit.
return ask en | The item arrived damaged, how do I return it?
return answer it | Ti ho inviato l'etichetta di reso via email. Il rimborso arriva entro 5 giorni dalla ricezione.
return answer it | Mi dispiace! Mandami una foto del danno e ti spedisco subito il cambio.
return answer fr | Je vous ai envoyé l'étiquette de retour par e-mail. Remboursement sous 5 jours.
return answer fr | Désolée ! Envoyez-moi une photo et je vous expédie un échange.
return answer en | I've emailed you a prepaid return label. Refunds arrive within 5 days.
return answer en | So sorry! Send me a photo and I'll ship a replacement right away.
return note * | label sent
return note * | refund approved
size ask it | Che taglia mi consigliate per {sku}? Di solito porto la M.
size ask it | Il modello {sku} veste grande o piccolo? Che taglia prendo?
size ask fr | Quelle taille me conseillez-vous pour {sku} ? Je fais 1m75.
size ask fr | Le modèle {sku} taille grand ou petit ? Quelle taille prendre ?
size ask en | Which size should I take for the {sku}? I'm usually a medium.
size ask en | Does the {sku} run large or small? Which size?
size answer it | Per la tua misura ti consiglio la M: il modello {sku} veste regolare.
size answer it | Ti consiglio una taglia in più: il tessuto è poco elastico.
size answer fr | Je vous conseille le M, le modèle {sku} taille normalement.
size answer fr | Prenez une taille au-dessus, la coupe est ajustée.
size answer en | I'd recommend a medium: the {sku} fits true to size.
size answer en | Go one size up: the cut is slim.
size note * | size advised
size note * | size guide sent
invoice ask it | Mi serve la fattura per l'ordine {order}, ho la partita IVA.
invoice ask it | Mi avete addebitato due volte l'ordine {order}.
invoice ask fr | Pouvez-vous m'envoyer la facture de la commande {order} ?
invoice ask fr | J'ai été débité deux fois pour la commande {order}.
invoice ask en | Could you send me the invoice for order {order}?
invoice ask en | I was charged twice for order {order}.
invoice answer it | Fatto: la fattura è stata inviata alla tua email.
invoice answer it | Il doppio addebito è una preautorizzazione: sparirà entro 3 giorni.
invoice answer fr | C'est fait : la facture vous a été envoyée par e-mail.
invoice answer fr | Le double débit est une pré-autorisation, il disparaîtra sous 3 jours.
invoice answer en | Done: the invoice has been sent to your email.
invoice answer en | The double charge is a pre-authorisation and will disappear within 3 days.
invoice note * | invoice sent
invoice note * | payment checked
technical ask it | Non riesco ad accedere al mio account, la password non funziona.
technical ask it | Il codice sconto non viene accettato al checkout.
technical ask fr | Je n'arrive pas à me connecter à mon compte.
technical ask fr | Le code promo ne fonctionne pas au paiement.
technical ask en | I can't log in to my account.
technical ask en | The discount code isn't accepted at checkout.
technical answer it | Ti ho inviato un link per reimpostare la password, valido 1 ora.
technical answer it | Ho riattivato il codice: ora dovrebbe funzionare.
technical answer fr | Je vous ai envoyé un lien pour réinitialiser le mot de passe.
technical answer fr | J'ai réactivé le code, il devrait fonctionner maintenant.
technical answer en | I've sent you a password reset link, valid for one hour.
technical answer en | I've re-enabled the code, it should work now.
technical note * | password reset
technical note * | bug reported to IT
purchase ask it | Avete ancora {sku} in taglia S?
purchase ask it | Vorrei un preventivo per 20 pezzi di {sku} per il mio negozio.
purchase ask fr | Avez-vous encore {sku} en taille S ?
purchase ask fr | Je voudrais un devis pour 20 pièces de {sku}.
purchase ask en | Is the {sku} still available in small?
purchase ask en | Can I get a quote for 20 pieces of {sku} for my shop?
purchase answer it | Sì, è disponibile: ti mando il link per completare l'ordine.
purchase answer it | Ti preparo il preventivo: per 20 pezzi lo sconto è del 15%.
purchase answer fr | Oui, il est disponible : voici le lien pour commander.
purchase answer fr | Je prépare le devis : pour 20 pièces la remise est de 15 %.
purchase answer en | Yes, it's in stock: here is the link to order.
purchase answer en | I'll prepare the quote: 20 pieces get a 15% discount.
purchase note * | stock checked
purchase note * | quote sent
price_complaint ask it | Ho pagato {sku} 40 euro in più del prezzo di oggi, mi rimborsate la differenza?
price_complaint ask fr | J'ai payé {sku} 40 € de plus que le prix actuel, vous remboursez la différence ?
price_complaint ask en | I paid 40 euros more for the {sku} than today's price, can you refund the difference?
price_complaint answer it | Ti riconosco la differenza come buono di 40 €, valido 6 mesi.
price_complaint answer fr | Je vous offre la différence en bon d'achat de 40 €, valable 6 mois.
price_complaint answer en | I've added the difference as a 40 euro voucher, valid for 6 months.
price_complaint note * | voucher issued
* details it | Il numero d'ordine è {order}.
* details fr | Le numéro de commande est {order}.
* details en | The order number is {order}.
* follow it | Ok, e quanto ci vuole?
* follow it | Va bene, attendo.
* follow fr | D'accord, et ça prend combien de temps ?
* follow fr | Très bien, j'attends.
* follow en | OK, and how long will it take?
* follow en | Alright, I'll wait.
* thanks it | Perfetto, grazie mille 🙏
* thanks fr | Parfait, merci beaucoup 🙏
* thanks en | Perfect, thanks a lot 🙏
* more it | Certo, verifico subito.
* more it | Sì, 2-3 giorni lavorativi. Posso aiutarti con altro?
* more fr | Bien sûr, je vérifie tout de suite.
* more fr | Oui, 2 à 3 jours ouvrés. Autre chose ?
* more en | Sure, let me check.
* more en | Yes, 2-3 working days. Anything else?
* bye it | Grazie a te, buona giornata!
* bye fr | Merci à vous, bonne journée !
* bye en | Thank you, have a nice day!
welcome bot it | Ciao {name}! Grazie per averci scritto 🙌 Un operatore ti risponde entro 10 minuti (lun–ven 9–18).
welcome bot it | Ciao {name}, benvenuto! Scrivici pure il numero d'ordine: ti rispondiamo entro 10 minuti.
welcome bot fr | Bonjour {name} ! Merci pour votre message 🙌 Un conseiller vous répond sous 10 minutes.
welcome bot fr | Bonjour {name}, bienvenue ! Indiquez-nous votre numéro de commande : réponse sous 10 minutes.
welcome bot en | Hi {name}! Thanks for your message 🙌 An agent will reply within 10 minutes (Mon–Fri 9–18).
welcome bot en | Hi {name}, welcome! Send us your order number: we reply within 10 minutes.
offline bot it | Siamo chiusi (22:00–08:00). Lasciaci il tuo messaggio: ti rispondiamo domattina per primi!
offline bot fr | Nous sommes fermés (22h–8h). Laissez votre message : nous vous répondons dès demain matin !
offline bot en | We're closed (22:00–08:00). Leave your message and we'll reply first thing in the morning!
logistics bot it | Spedizione gratuita sopra 50 €, consegna in 24–48 h. Traccia il tuo ordine: https://shop.example/track
logistics bot it | Consegniamo in 1–2 giorni lavorativi con BRT. Il tracking arriva via email alla spedizione.
logistics bot fr | Livraison offerte dès 50 €, en 48 h. Suivez votre colis : https://shop.example/track
logistics bot fr | Nous livrons en 2 jours ouvrés avec Colissimo. Le suivi vous est envoyé par e-mail.
logistics bot en | Free delivery over €50, 2–3 working days. Track your order: https://shop.example/track
logistics bot en | We ship within 24 h with DHL; the tracking link comes by email.
size bot it | Guida taglie: https://shop.example/taglie. Se sei tra due taglie, prendi la più grande!
size bot fr | Notre guide des tailles : https://shop.example/tailles. Entre deux tailles, prenez la plus grande !
size bot en | Our size guide: https://shop.example/sizes. Between two sizes? Take the larger one!
size bot en | Our clothes fit true to size: see https://shop.example/sizes
lunch bot * | Pausa pranzo (11:30–13:00) 🍝 ti rispondiamo subito dopo! Pause déjeuner, on revient vite ! Lunch break, back soon!";

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

enum Sender {
    Customer(MessageType),
    Bot(i64, usize, Option<Value>),
    Agent(Option<i64>),
}

/// What was decided about one conversation before writing it.
struct Conv {
    id: i64,
    at: DateTime<Utc>,
    live: Live,
    person: Person,
    fresh: bool,
    repeat: bool,
    topic: usize,
    variant: usize,
    priority: Priority,
    policy: (Option<i64>, i64, i64),
    clock: DateTime<Utc>,
    channel: (i64, i64),
    department: Option<i64>,
    new_department: Option<i64>,
    rule: Option<&'static str>,
    bot_only: bool,
    total: usize,
    first_agent: DateTime<Utc>,
    agents: (Option<i64>, Option<i64>),
    escalated: bool,
    transfer_at: Option<usize>,
    vars: [(&'static str, String); 4],
}

#[derive(Default)]
struct Timeline {
    first_response: Option<DateTime<Utc>>,
    human: bool,
    transferred_at: Option<DateTime<Utc>>,
    last_inbound: Option<DateTime<Utc>>,
    last_outbound: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
}

type Key = (&'static str, &'static str, usize);
type Resolved = (Person, usize, DateTime<Utc>);
type Writing = (tokio::task::JoinHandle<Result<()>>, Vec<Resolved>);

struct Refs {
    /// (id, price of a paid message in micro-USD); Italian first, French second.
    channels: Vec<(i64, i64)>,
    departments: HashMap<String, i64>,
    agents: Vec<Agent>,
    editor: Option<i64>,
    tags: HashMap<String, i64>,
    /// (kind, language) → (rule id, buttons payload)
    rules: HashMap<(&'static str, usize), (i64, Option<Value>)>,
    /// Per priority (low, normal, high, urgent): (id, first response secs, resolution secs).
    policies: [(Option<i64>, i64, i64); 4],
    flow: Option<i64>,
    texts: HashMap<Key, Vec<&'static str>>,
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

struct Gen {
    rng: StdRng,
    now: DateTime<Utc>,
    refs: Refs,
    next_contact: i64,
    next_conversation: i64,
    next_message: i64,
    /// Messages billed so far per (channel, month): the first 1,000 are free.
    billed: HashMap<(i64, String), i64>,
    /// Resolved conversations of committed chunks, for returning customers.
    recent: VecDeque<Resolved>,
    /// Those of the chunk being generated: their contacts are not committed yet.
    resolved: Vec<Resolved>,
    counts: HashMap<&'static str, usize>,
}

pub async fn run(domain: &Domain, conversations: u32) -> Result<String> {
    let (db, now, n) = (&domain.db, domain.clock.now(), i64::from(conversations));
    let (refs, created_staff) = setup(domain).await?;
    let billed: Vec<(i64, String, i64)> = billing_ledger::Entity::find()
        .select_only()
        .column(billing_ledger::Column::ChannelId)
        .column(billing_ledger::Column::Period)
        .column_as(billing_ledger::Column::Id.count(), "n")
        .group_by(billing_ledger::Column::ChannelId)
        .group_by(billing_ledger::Column::Period)
        .into_tuple()
        .all(db)
        .await?;
    let mut g = Gen {
        rng: StdRng::seed_from_u64(0x4845_4c50 ^ n as u64),
        now,
        refs,
        next_contact: reserve_ids(db, "contacts", n).await?,
        next_conversation: reserve_ids(db, "conversations", n).await?,
        next_message: reserve_ids(db, "messages", n * MAX_MESSAGES as i64).await?,
        billed: billed.into_iter().map(|(c, p, k)| ((c, p), k)).collect(),
        recent: VecDeque::new(),
        resolved: Vec::new(),
        counts: HashMap::new(),
    };
    // Chunks are written while the next is generated; PostgreSQL takes several at once.
    let parallel = match db.get_database_backend() {
        DbBackend::Postgres => {
            std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4))
        }
        _ => 1,
    };
    let mut writing = VecDeque::new();
    for chunk in g.plan(conversations as usize).chunks(CHUNK) {
        let mut b = Batch::default();
        for &(at, live) in chunk {
            g.conversation(at, live, &mut b);
        }
        let csat = b.conversations.iter().filter(|c| c.csat.is_some()).count();
        for (key, k) in [
            ("new contacts", b.contacts.len()),
            ("messages", b.messages.len()),
            ("billing rows", b.ledger.len()),
            ("surveys", b.surveys.len()),
            ("CSAT answers", csat),
            ("notes", b.notes.len()),
            ("SLA events", b.sla.len()),
        ] {
            *g.counts.entry(key).or_default() += k;
        }
        while writing.len() >= parallel {
            g.written(writing.pop_front()).await?;
        }
        writing.push_back((
            tokio::spawn(b.flush(db.clone())),
            std::mem::take(&mut g.resolved),
        ));
    }
    while !writing.is_empty() {
        g.written(writing.pop_front()).await?;
    }
    // Roll the metrics up now, with every mark up to now (this command is
    // the only writer), so that the dashboard reads rollups from the start.
    let mut hours = 0;
    loop {
        let n = domain
            .refresh_metrics_rollups(24 * 7, chrono::Duration::seconds(-1))
            .await?;
        if n == 0 {
            break;
        }
        hours += n;
    }
    let counts = [
        "queued",
        "assigned",
        "pending",
        "new contacts",
        "messages",
        "billing rows",
    ]
    .into_iter()
    .chain(["surveys", "CSAT answers", "notes", "SLA events"])
    .map(|k| format!("{} {k}", g.counts.get(k).copied().unwrap_or(0)))
    .collect::<Vec<_>>()
    .join(", ");
    let staff = user::Entity::find().all(db).await?;
    let admins: Vec<&str> = staff
        .iter()
        .filter(|u| u.role == Role::Admin)
        .map(|u| u.email.as_str())
        .collect();
    Ok(format!(
        "Demo desk ready: {} channels, {} departments, {} staff ({created_staff} created now), tags, canned \
         responses, auto-reply rules, SLA policies and Europe/Rome business hours. Added {conversations} \
         conversations over the past {DAYS} days, the live ones in queue or assigned, the rest resolved or \
         closed: {counts}; {hours} hours of metrics rolled up. Log in as editor giulia.conti@helpdesk.demo, analyst paul.lefevre@helpdesk.demo \
         or agent marco.rossi@helpdesk.demo with password {DEMO_PASSWORD}; {}.",
        g.refs.channels.len(),
        g.refs.departments.len(),
        staff.len(),
        match admins.as_slice() {
            [] => "there is no admin yet: create one with `helpdesk create-user --role admin`"
                .to_string(),
            admins => format!("admins ({}) keep their own password", admins.join(", ")),
        },
    ))
}

/// Channels, departments, staff, tags, canned responses, rules, SLA, lead flow and
/// agent presence: found by name or created. Returns them and how many staff were new.
async fn setup(domain: &Domain) -> Result<(Refs, usize)> {
    let (db, now) = (&domain.db, domain.clock.now());
    let channels = ensure_channels(db, now).await?;
    let mut departments = HashMap::new();
    for [name, routing, description, keywords] in table::<4>(DEPARTMENTS)? {
        let row = json!({"name": name, "description": description, "keywords": list(keywords),
            "routing_strategy": routing, "created_at": now, "updated_at": now});
        let d = ensure::<department::Entity>(db, department::Column::Name, row).await?;
        departments.insert(d.name, d.id);
    }
    let created_staff = ensure_staff(domain, &departments).await?;
    let staff = user::Entity::find().all(db).await?;
    let editor = staff.iter().find(|u| u.role == Role::Editor).map(|u| u.id);
    let mut tags = HashMap::new();
    for (name, color) in TAGS {
        let row = json!({"name": name, "color": color, "created_at": now});
        let t = ensure::<tag::Entity>(db, tag::Column::Name, row).await?;
        tags.insert(t.name, t.id);
    }
    for [shortcut, department, title, body] in table::<4>(CANNED)? {
        let row = json!({"shortcut": shortcut, "title": title, "body": body, "created_at": now,
            "updated_at": now, "department_id": departments.get(department)});
        ensure::<canned_response::Entity>(db, canned_response::Column::Shortcut, row).await?;
    }
    let texts = load_texts()?;
    let rules = ensure_rules(db, &texts, channels.first().map(|c| c.0), now).await?;
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
        texts,
    };
    Ok((refs, created_staff))
}

// ------------------------------------------------------------ reference data

/// Rows of a `|`-separated table, trimmed, blank lines skipped.
fn table<const N: usize>(text: &'static str) -> Result<Vec<[&'static str; N]>> {
    let rows = text.lines().filter(|l| !l.trim().is_empty());
    rows.map(|line| {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        cells
            .try_into()
            .map_err(|_| anyhow::anyhow!("{N} cells expected: {line}"))
    })
    .collect()
}

fn list(cell: &str) -> Vec<&str> {
    cell.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

fn lang_index(code: &str) -> usize {
    LANGS.iter().position(|l| *l == code).unwrap_or(ANY)
}

fn load_texts() -> Result<HashMap<Key, Vec<&'static str>>> {
    let mut texts: HashMap<Key, Vec<&str>> = HashMap::new();
    for [head, text] in table::<2>(TEXTS)? {
        let &[topic, kind, lang] = head.split_whitespace().collect::<Vec<_>>().as_slice() else {
            bail!("`topic kind language` expected: {head}");
        };
        texts
            .entry((topic, kind, lang_index(lang)))
            .or_default()
            .push(text);
    }
    Ok(texts)
}

/// Finds the row whose `unique` column equals the JSON's, or inserts the JSON.
async fn ensure<E>(db: &DatabaseConnection, unique: E::Column, row: Value) -> Result<E::Model>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel> + Serialize + DeserializeOwned + Sync,
    E::ActiveModel: ActiveModelBehavior + TryIntoModel<E::Model> + Send,
{
    let key = row
        .get(unique.as_str())
        .and_then(Value::as_str)
        .unwrap_or_default();
    if let Some(found) = E::find().filter(unique.eq(key)).one(db).await? {
        return Ok(found);
    }
    Ok(E::ActiveModel::from_json(row)?.insert(db).await?)
}

async fn ensure_channels(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<Vec<(i64, i64)>> {
    let mut out = Vec::new();
    for (name, number_id, display, waba) in [
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
    ] {
        let row = json!({"name": name, "phone_number_id": number_id, "display_phone_number": display,
            "waba_id": waba, "region": "europe", "is_active": true, "created_at": now, "updated_at": now});
        let c = ensure::<channel::Entity>(db, channel::Column::PhoneNumberId, row).await?;
        // Meta: 0.005 USD a message in South-East Asia, 0.008 in Europe and the Americas.
        out.push((
            c.id,
            if c.region.contains("asia") {
                5_000
            } else {
                8_000
            },
        ));
    }
    Ok(out)
}

async fn ensure_staff(domain: &Domain, departments: &HashMap<String, i64>) -> Result<usize> {
    let existing: HashSet<String> = user::Entity::find()
        .all(&domain.db)
        .await?
        .into_iter()
        .map(|u| u.email)
        .collect();
    let mut created = 0;
    for [login, name, role, capacity, skills, depts] in table::<6>(STAFF)? {
        let email = format!("{login}@helpdesk.demo");
        if existing.contains(&email) {
            continue;
        }
        let input = StaffForCreate {
            email,
            name: name.into(),
            password: DEMO_PASSWORD.into(),
            role: serde_json::from_value(json!(role))?,
            skills: list(skills).into_iter().map(String::from).collect(),
            max_concurrent: Some(capacity.parse()?),
            department_ids: list(depts)
                .iter()
                .filter_map(|d| departments.get(*d).copied())
                .collect(),
        };
        domain.create_staff(&Actor::system(), input).await?;
        created += 1;
    }
    Ok(created)
}

async fn ensure_rules(
    db: &DatabaseConnection,
    texts: &HashMap<Key, Vec<&'static str>>,
    it_channel: Option<i64>,
    now: DateTime<Utc>,
) -> Result<HashMap<(&'static str, usize), (i64, Option<Value>)>> {
    let mut out = HashMap::new();
    for (priority, [name, kind, mode, lang, keywords, buttons]) in
        table::<6>(RULES)?.into_iter().enumerate()
    {
        let lang = lang_index(lang);
        let schedule = match mode {
            "offline" => json!({"days": [1, 2, 3, 4, 5, 6, 7], "start": "22:00", "end": "08:00"}),
            "scheduled" => json!({"days": [1, 2, 3, 4, 5], "start": "11:30", "end": "13:00"}),
            _ => Value::Null,
        };
        let row = json!({"name": name, "trigger_mode": mode, "language": LANGS.get(lang),
            "keywords": list(keywords), "buttons": list(buttons), "schedule": schedule,
            "variants": texts.get(&(kind, "bot", lang)), "priority": priority, "is_active": true,
            "channel_id": if mode == "scheduled" { it_channel } else { None }, "created_at": now, "updated_at": now});
        let rule =
            ensure::<auto_reply_rule::Entity>(db, auto_reply_rule::Column::Name, row).await?;
        let buttons =
            (!buttons.is_empty()).then(|| json!({"type": "button", "buttons": list(buttons)}));
        for l in if lang == ANY { 0..3 } else { lang..lang + 1 } {
            out.insert((kind, l), (rule.id, buttons.clone()));
        }
    }
    Ok(out)
}

async fn ensure_sla(
    db: &DatabaseConnection,
    departments: &HashMap<String, i64>,
    editor: Option<i64>,
    now: DateTime<Utc>,
) -> Result<[(Option<i64>, i64, i64); 4]> {
    let day = json!([["09:00", "18:00"]]);
    let row = json!({"name": "Milano office", "timezone": "Europe/Rome", "created_at": now, "updated_at": now,
        "schedule": {"mon": day, "tue": day, "wed": day, "thu": day, "fri": day, "sat": [], "sun": []}});
    let hours = ensure::<business_hours::Entity>(db, business_hours::Column::Name, row).await?;
    let filter = holiday::Column::BusinessHoursId.eq(hours.id);
    if holiday::Entity::find().filter(filter).count(db).await? == 0 {
        let days = [
            (1, 1),
            (1, 6),
            (4, 25),
            (5, 1),
            (6, 2),
            (8, 15),
            (11, 1),
            (12, 8),
            (12, 25),
            (12, 26),
        ];
        let rows = days.iter().filter_map(|&(m, d)| {
            Some(holiday::ActiveModel {
                business_hours_id: Set(hours.id),
                date: Set(NaiveDate::from_ymd_opt(now.year(), m, d)?),
                name: Set(Some(format!("Festa {d}/{m}"))),
                ..Default::default()
            })
        });
        holiday::Entity::insert_many(rows)
            .exec_without_returning(db)
            .await?;
    }
    let billing = departments.get("Billing");
    let mut out = [(None, 600, 86_400); 4];
    for (i, (name, priority, first, resolution)) in [
        ("Low priority", "low", 900, 172_800),
        ("Standard", "normal", 600, 86_400),
        ("VIP", "high", 300, 86_400),
        ("Urgent", "urgent", 120, 14_400),
        ("Billing questions", "", 1_200, 86_400),
    ]
    .into_iter()
    .enumerate()
    {
        // The billing policy escalates functionally, to its team, and tells the customer.
        let functional = priority.is_empty();
        let row = json!({"name": name, "priority": (!functional).then_some(priority), "business_hours_id": hours.id,
            "first_response_secs": first, "resolution_secs": resolution, "warn_percent": 80,
            "topic_tolerances": {"logistics": 720, "price_complaint": 480}, "pause_when_pending": true,
            "escalation_kind": if functional { "functional" } else { "hierarchical" },
            "escalate_to_user_id": if functional { None } else { editor },
            "department_id": billing.filter(|_| functional), "escalate_to_department_id": billing.filter(|_| functional),
            "notify_customer_on_breach": functional, "is_default": name == "Standard", "created_at": now, "updated_at": now});
        let policy = ensure::<sla_policy::Entity>(db, sla_policy::Column::Name, row).await?;
        if let Some(slot) = out.get_mut(i) {
            *slot = (Some(policy.id), first, resolution);
        }
    }
    Ok(out)
}

async fn ensure_lead_flow(
    db: &DatabaseConnection,
    departments: &HashMap<String, i64>,
    now: DateTime<Utc>,
) -> Result<Option<i64>> {
    let questions = json!([
        {"field": "area", "question": "In which city is your shop?"},
        {"field": "budget", "question": "What budget do you have in mind?"},
        {"field": "size", "question": "How many pieces, in which sizes?"},
        {"field": "timing", "question": "When do you need the goods?"},
    ]);
    let row = json!({"name": "Wholesale pre-qualification", "department_id": departments.get("Sales"),
        "trigger_keywords": ["ingrosso", "preventivo", "grossiste", "devis", "wholesale", "quote"],
        "questions": questions, "is_active": true, "created_at": now, "updated_at": now});
    let flow = ensure::<lead_flow::Entity>(db, lead_flow::Column::Name, row).await?;
    Ok(Some(flow.id))
}

async fn load_agents(db: &DatabaseConnection, staff: &[user::Model]) -> Result<Vec<Agent>> {
    let members = department_member::Entity::find().all(db).await?;
    let load: HashMap<Option<i64>, i64> = conversation::Entity::find()
        .select_only()
        .column(conversation::Column::AssigneeId)
        .column_as(conversation::Column::Id.count(), "n")
        .filter(conversation::Column::Status.is_in([CS::Open, CS::Pending]))
        .group_by(conversation::Column::AssigneeId)
        .into_tuple::<(Option<i64>, i64)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let agents = staff
        .iter()
        .filter(|u| u.role == Role::Agent && u.is_active);
    Ok(agents
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

/// Shifts over the past weeks for agents that have no presence history yet:
/// day (09:00–17:00) or late (13:00–22:00), with a break away; those on shift
/// now are online.
async fn presence(db: &DatabaseConnection, agents: &[Agent], now: DateTime<Utc>) -> Result<()> {
    let (mut rows, mut online) = (Vec::new(), Vec::new());
    for (i, agent) in agents.iter().enumerate() {
        let mine = presence_interval::Column::UserId.eq(agent.id);
        if presence_interval::Entity::find()
            .filter(mine)
            .count(db)
            .await?
            > 0
        {
            continue;
        }
        let shift = if i % 2 == 0 {
            [540, 750, 795, 1020]
        } else {
            [780, 1050, 1080, 1320]
        };
        for back in (0..DAYS).rev() {
            let day = local(now).date() - Duration::days(back);
            // Saturday is covered by every third agent; Sunday by nobody.
            if day.weekday().number_from_monday() > 5 + u32::from(i % 3 == 0) {
                continue;
            }
            for (k, status) in [Presence::Online, Presence::Away, Presence::Online]
                .into_iter()
                .enumerate()
            {
                let started = at_local(day, shift[k]);
                let ended = at_local(day, shift.get(k + 1).copied().unwrap_or(shift[3]));
                if started >= now || started == ended {
                    continue;
                }
                if ended > now && status == Presence::Online {
                    online.push(agent.id);
                }
                rows.push(presence_interval::ActiveModel {
                    user_id: Set(agent.id),
                    status: Set(status),
                    started_at: Set(started),
                    ended_at: Set((ended <= now).then_some(ended)),
                    ..Default::default()
                });
            }
        }
    }
    insert(db, rows).await?;
    user::Entity::update_many()
        .col_expr(user::Column::Presence, Expr::value(Presence::Online))
        .col_expr(user::Column::LastSeenAt, Expr::value(Some(now)))
        .filter(user::Column::Id.is_in(online))
        .exec(db)
        .await?;
    Ok(())
}

// ------------------------------------------------------------ conversations

impl Gen {
    /// Waits for a chunk's transaction; its customers may then come back.
    async fn written(&mut self, chunk: Option<Writing>) -> Result<()> {
        let Some((task, resolved)) = chunk else {
            return Ok(());
        };
        task.await?.context("inserting demo conversations")?;
        self.recent.extend(resolved);
        let excess = self.recent.len().saturating_sub(500);
        self.recent.drain(..excess);
        Ok(())
    }

    /// Start times, oldest first: history over the past weeks, then the live desk
    /// (a queue, and assigned conversations within the agents' free capacity).
    fn plan(&mut self, n: usize) -> Vec<(DateTime<Utc>, Live)> {
        let free: i64 = self
            .refs
            .agents
            .iter()
            .map(|a| (a.capacity - a.load).max(0))
            .sum();
        let queued = (n / 40).clamp(2, 60).min(n / 3);
        let assigned = (n / 25).clamp(2, 40).min(n / 3).min(free as usize);
        let pending = assigned.div_ceil(4);
        let mut plans: Vec<_> = (queued + assigned..n)
            .map(|_| (self.sample_time(), Live::No))
            .collect();
        let mut live: Vec<_> = (0..queued + assigned)
            .map(|i| match i {
                _ if i < queued => (self.ago(60, 1_500), Live::Queued),
                _ if i < queued + pending => (self.ago(1_200, 10_800), Live::Pending),
                _ => (self.ago(300, 7_200), Live::Assigned),
            })
            .collect();
        plans.sort_by_key(|p| p.0);
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
            let minute = weighted(&mut self.rng, &HOURS) as u32 * 60 + self.rng.random_range(0..60);
            let t = at_local(day, minute) + secs(self.rng.random_range(0..60));
            if t <= latest && t > self.now - Duration::days(DAYS) {
                return t;
            }
        }
        latest - secs(self.rng.random_range(0..DAYS * 86_400 - 10_800))
    }

    /// A returning customer (within a week, often about the same thing) or a new one.
    fn person(
        &mut self,
        at: DateTime<Utc>,
        live: Live,
        b: &mut Batch,
    ) -> (Person, bool, Option<usize>) {
        let known = self.recent.len() + self.resolved.len();
        if live == Live::No && known > 0 && self.rng.random_bool(0.22) {
            let i = self.rng.random_range(0..known);
            let past = self
                .recent
                .get(i)
                .or_else(|| self.resolved.get(i - self.recent.len()));
            if let Some((p, topic, ended)) = past.cloned()
                && ended < at
                && at - ended < Duration::days(7)
            {
                return (p, false, self.rng.random_bool(0.6).then_some(topic));
            }
        }
        let id = self.next_contact;
        self.next_contact += 1;
        let lang = weighted(&mut self.rng, &[50, 35, 15]);
        let channel =
            [0, 1, self.rng.random_range(0..2)][lang].min(self.refs.channels.len().max(1) - 1);
        let first = FIRST[lang][self.rng.random_range(0..8)];
        let name = format!("{first} {}", LAST[lang][self.rng.random_range(0..8)]);
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
            name: Some(name),
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
            fields: json!({"city": CITIES[lang][self.rng.random_range(0..3)]}),
            external_id: self.rng.random_bool(0.3).then(|| format!("CRM-{id}")),
            last_inbound_at: Some(at),
            erased_at: None,
            created_at: at,
            updated_at: at,
        });
        if vip && let Some(&tag_id) = self.refs.tags.get("vip") {
            b.contact_tags.push(contact_tag::ActiveModel {
                contact_id: Set(id),
                tag_id: Set(tag_id),
            });
        }
        let automated = consent != ConsentState::OptedOut;
        (
            Person {
                id,
                channel,
                lang,
                first,
                vip,
                automated,
            },
            true,
            None,
        )
    }

    /// A member of the department (any agent if none), within capacity for live work.
    fn pick_agent(&mut self, department: Option<i64>, not: Option<i64>, live: bool) -> Option<i64> {
        let agents = &self.refs.agents;
        let fits = |i: &usize| {
            Some(agents[*i].id) != not && (!live || agents[*i].load < agents[*i].capacity)
        };
        let mut pool: Vec<usize> = (0..agents.len())
            .filter(fits)
            .filter(|&i| department.is_none_or(|d| agents[i].departments.contains(&d)))
            .collect();
        if pool.is_empty() {
            pool = (0..agents.len()).filter(fits).collect();
        }
        let pick = *pool.get(self.rng.random_range(0..pool.len().max(1)))?;
        let agent = self.refs.agents.get_mut(pick)?;
        agent.load += i64::from(live);
        Some(agent.id)
    }

    fn conversation(&mut self, at: DateTime<Utc>, live: Live, b: &mut Batch) {
        let c = self.decide(at, live, b);
        let tl = self.timeline(&c, b);
        self.finish(c, tl, b);
    }

    fn decide(&mut self, at: DateTime<Utc>, live: Live, b: &mut Batch) -> Conv {
        let (person, fresh, same_topic) = self.person(at, live, b);
        let topic = same_topic.unwrap_or_else(|| weighted(&mut self.rng, &TOPICS.map(|t| t.2)));
        let (key, department, _, faq) = TOPICS[topic];
        let asks = self.text(key, "ask", person.lang).len().max(1);
        let variant = self.rng.random_range(0..asks);
        let priority = if person.vip || (key == "price_complaint" && self.rng.random_bool(0.5)) {
            Priority::High
        } else {
            [Priority::Low, Priority::Normal, Priority::Urgent]
                [weighted(&mut self.rng, &[10, 86, 4])]
        };
        let policy = self.refs.policies[match priority {
            Priority::Low => 0,
            Priority::Normal => 1,
            Priority::High => 2,
            Priority::Urgent => 3,
        }];
        let frt = policy.1;
        let (clock, l) = (clock_start(at), local(at));
        let minute = l.hour() * 60 + l.minute();
        let bot_only = live == Live::No && faq && person.automated && self.rng.random_bool(0.3);
        let rule = match () {
            _ if !person.automated => None,
            _ if bot_only => Some(key),
            _ if !(480..1320).contains(&minute) => Some("offline"),
            _ if l.weekday().number_from_monday() <= 5 && (690..780).contains(&minute) => {
                Some("lunch")
            }
            _ if fresh || live == Live::Queued => Some("welcome"),
            _ => None,
        }
        .filter(|k| self.refs.rules.contains_key(&(*k, person.lang)));
        let total = match live {
            _ if bot_only => 3,
            Live::Queued => self.rng.random_range(2..4),
            Live::Assigned => self.rng.random_range(2..8),
            // An agent has answered and waits on the customer.
            Live::Pending => self.rng.random_range(4..8),
            Live::No => {
                let extra = weighted(&mut self.rng, &[6, 8, 12, 14, 14, 12, 10, 8, 6, 5, 5]);
                (2 + extra).max(if rule.is_some() { 4 } else { 2 })
            }
        };
        // When the first human answer comes: nobody is on shift 22:00–09:00.
        let (lo, hi) = [(15, 120), (120, 360), (360, 600), (600, 2_400)]
            [weighted(&mut self.rng, &[60, 25, 10, 5])];
        let mut first_agent = at + secs(self.rng.random_range(lo..hi) * frt / 600);
        if !(540..1320).contains(&minute) {
            let day = l.date() + Duration::days(i64::from(minute >= 1320));
            let morning = at_local(day, 540) + secs(self.rng.random_range(30..frt * 7 / 10));
            if morning < self.now - Duration::hours(3) {
                first_agent = first_agent.max(morning);
            }
        }
        let warn_at = clock + secs(frt * 8 / 10);
        let escalated =
            live == Live::No && !bot_only && first_agent > warn_at && self.rng.random_bool(0.5);
        let human = !bot_only && live != Live::Queued;
        let department = self.refs.departments.get(department).copied();
        let agent_a = if human {
            self.pick_agent(department, None, live != Live::No)
        } else {
            None
        };
        let transfer = live == Live::No
            && agent_a.is_some()
            && !escalated
            && total >= 6
            && self.rng.random_bool(0.06);
        let mut new_department = department;
        if transfer {
            let other = TOPICS[(topic + self.rng.random_range(1..TOPICS.len())) % TOPICS.len()].1;
            new_department = self.refs.departments.get(other).copied();
        }
        let mut agent_b = agent_a;
        if escalated || transfer {
            agent_b = self.pick_agent(new_department, agent_a, false).or(agent_a);
        }
        if escalated {
            first_agent = first_agent.max(warn_at + secs(self.rng.random_range(20..120)));
        }
        let vars = [
            ("{name}", person.first.to_string()),
            (
                "{order}",
                format!(
                    "#{}{}",
                    ["IT", "FR", "UK"][person.lang],
                    self.rng.random_range(40_000..99_999)
                ),
            ),
            (
                "{sku}",
                SKUS[self.rng.random_range(0..SKUS.len())].to_string(),
            ),
            (
                "{track}",
                format!("JD{:010}", self.rng.random_range(0..9_999_999_999i64)),
            ),
        ];
        let id = self.next_conversation;
        self.next_conversation += 1;
        Conv {
            id,
            at,
            live,
            channel: self
                .refs
                .channels
                .get(person.channel)
                .copied()
                .unwrap_or((0, 8_000)),
            person,
            fresh,
            repeat: same_topic.is_some(),
            topic,
            variant,
            priority,
            policy,
            clock,
            department,
            new_department,
            rule,
            bot_only,
            total,
            first_agent,
            agents: (agent_a, agent_b),
            escalated,
            // An agent's turn (odd index) after the first answer.
            transfer_at: transfer.then(|| 3 + 2 * self.rng.random_range(0..(total - 2) / 2)),
            vars,
        }
    }

    fn text(&self, topic: &'static str, kind: &'static str, lang: usize) -> &[&'static str] {
        let texts = &self.refs.texts;
        let found = texts
            .get(&(topic, kind, lang))
            .or_else(|| texts.get(&(topic, kind, ANY)));
        found.map_or(&[], Vec::as_slice)
    }

    fn pick(
        &mut self,
        topic: &'static str,
        kind: &'static str,
        lang: usize,
    ) -> (usize, &'static str) {
        let n = self.text(topic, kind, lang).len();
        let i = self.rng.random_range(0..n.max(1));
        (
            i,
            self.text(topic, kind, lang)
                .get(i)
                .copied()
                .unwrap_or_default(),
        )
    }

    /// The messages: customer and business alternate; a bot may answer first.
    fn timeline(&mut self, c: &Conv, b: &mut Batch) -> Timeline {
        let (key, lang) = (TOPICS[c.topic].0, c.person.lang);
        let fill = |s: &str| {
            c.vars
                .iter()
                .fold(s.to_string(), |s, (k, v)| s.replace(k, v))
        };
        let (first, mut t, mut tl) = (b.messages.len(), c.at, Timeline::default());
        for i in 0..c.total {
            if i % 2 == 0 {
                if i > 0 {
                    t += secs(self.rng.random_range(20..300));
                }
                let text = match i {
                    0 => self
                        .text(key, "ask", lang)
                        .get(c.variant)
                        .copied()
                        .unwrap_or_default(),
                    _ if i + 1 == c.total => self.pick("*", "thanks", lang).1,
                    2 if c.rule.is_some() => self.pick("*", "details", lang).1,
                    _ => self.pick("*", "follow", lang).1,
                };
                let photo = key == "return" && c.variant == 1 && i == 2;
                let kind = if photo {
                    MessageType::Image
                } else {
                    MessageType::Text
                };
                self.message(b, c, t, Sender::Customer(kind), fill(text));
            } else if let (1, Some(kind)) = (i, c.rule) {
                let (rule_id, buttons) = self
                    .refs
                    .rules
                    .get(&(kind, lang))
                    .cloned()
                    .unwrap_or((0, None));
                let (variant, text) = self.pick(kind, "bot", lang);
                t += secs(self.rng.random_range(2..6));
                self.message(b, c, t, Sender::Bot(rule_id, variant, buttons), fill(text));
                if c.bot_only {
                    tl.first_response = Some(t);
                }
            } else {
                if c.bot_only || c.live == Live::Queued {
                    break;
                }
                let after_transfer = c.transfer_at.is_some_and(|at| i >= at);
                t = if tl.human {
                    t + secs(self.rng.random_range(20..240))
                } else {
                    c.first_agent.max(t + secs(10))
                };
                if after_transfer && tl.transferred_at.is_none() {
                    tl.transferred_at = Some(t - secs(30));
                }
                let text = match () {
                    _ if !tl.human => self
                        .text(key, "answer", lang)
                        .get(c.variant)
                        .copied()
                        .unwrap_or_default(),
                    _ if i + 2 >= c.total => self.pick("*", "bye", lang).1,
                    _ => self.pick("*", "more", lang).1,
                };
                let agent = if c.escalated || after_transfer {
                    c.agents.1
                } else {
                    c.agents.0
                };
                self.message(b, c, t, Sender::Agent(agent), fill(text));
                tl.first_response = tl.first_response.or(Some(t));
                tl.human = true;
            }
        }
        // The live desk has no messages from the future; pending waits on the customer.
        if c.live != Live::No {
            let cut = self.now - secs(5);
            let unsent = |m: &message::Model| {
                m.created_at > cut || (c.live == Live::Pending && m.direction == Direction::Inbound)
            };
            while b.messages.len() > first + 1 && b.messages.last().is_some_and(unsent) {
                // Ledger rows follow message order: a billed message owns the last one.
                if b.messages.pop().is_some_and(|m| m.cost_micros.is_some()) {
                    b.ledger.pop();
                }
            }
            tl.first_response = tl.first_response.filter(|f| *f <= cut);
            tl.human &= tl.first_response.is_some();
        }
        let mine = b.messages.get(first..).unwrap_or_default();
        let last_of = |d: Direction| {
            mine.iter()
                .rev()
                .find(|m| m.direction == d)
                .map(|m| m.created_at)
        };
        (tl.last_inbound, tl.last_outbound) =
            (last_of(Direction::Inbound), last_of(Direction::Outbound));
        tl.last = mine.last().map(|m| m.created_at);
        tl
    }

    fn message(
        &mut self,
        b: &mut Batch,
        c: &Conv,
        at: DateTime<Utc>,
        sender: Sender,
        body: String,
    ) {
        let (id, (channel, price)) = (self.next_message, c.channel);
        self.next_message += 1;
        let mut m = message::Model {
            id,
            conversation_id: c.id,
            channel_id: channel,
            direction: Direction::Outbound,
            sender_kind: SenderKind::Customer,
            sender_user_id: None,
            message_type: MessageType::Text,
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
        match sender {
            Sender::Customer(kind) => {
                m.direction = Direction::Inbound;
                m.message_type = kind;
                if kind == MessageType::Image {
                    m.media = Some(
                        json!({"id": format!("demo-{id}"), "mime_type": "image/jpeg", "caption": m.body}),
                    );
                }
                b.messages.push(m);
                return;
            }
            Sender::Bot(rule, variant, buttons) => {
                (m.sender_kind, m.auto_rule_id, m.auto_variant) =
                    (SenderKind::Bot, Some(rule), Some(variant as i32));
                if buttons.is_some() {
                    (m.message_type, m.payload) = (MessageType::Interactive, buttons);
                }
            }
            Sender::Agent(agent) => (m.sender_kind, m.sender_user_id) = (SenderKind::Agent, agent),
        }
        let delivered = at + secs(self.rng.random_range(1..5));
        let read = delivered + secs(self.rng.random_range(5..600));
        m.sent_at = Some(at);
        m.status = [DS::Failed, DS::Sent, DS::Delivered, DS::Read]
            [weighted(&mut self.rng, &[1, 4, 18, 77])];
        match m.status {
            DS::Failed => {
                (m.error_code, m.error_title) =
                    (Some(131_026), Some("Message undeliverable".into()));
                m.failed_at = Some(delivered);
            }
            DS::Read if read <= self.now => {
                (m.delivered_at, m.read_at) = (Some(delivered), Some(read))
            }
            DS::Read | DS::Delivered => {
                (m.status, m.delivered_at) = (DS::Delivered, Some(delivered))
            }
            _ => {}
        }
        if m.status != DS::Failed {
            let period = at.format("%Y-%m").to_string();
            let count = self.billed.entry((channel, period.clone())).or_insert(0);
            *count += 1;
            let cost = if *count <= 1_000 { 0 } else { price };
            m.cost_micros = Some(cost);
            b.ledger.push(billing_ledger::ActiveModel {
                message_id: Set(id),
                channel_id: Set(channel),
                conversation_id: Set(c.id),
                period: Set(period),
                region: Set(if price == 5_000 { "asia" } else { "europe" }.into()),
                free: Set(cost == 0),
                base_micros: Set(cost),
                surcharge_micros: Set(0),
                total_micros: Set(cost),
                created_at: Set(at),
                ..Default::default()
            });
        }
        b.messages.push(m);
    }

    /// Status and times, then history, SLA events, surveys, notes and tags, then the row.
    fn finish(&mut self, c: Conv, tl: Timeline, b: &mut Batch) {
        let (now, key) = (self.now, TOPICS[c.topic].0);
        let (last, last_inbound) = (tl.last.unwrap_or(c.at), tl.last_inbound.unwrap_or(c.at));
        let status = match c.live {
            Live::No => CS::Resolved,
            Live::Pending if tl.human && tl.last_outbound.is_some_and(|o| o >= last_inbound) => {
                CS::Pending
            }
            _ => CS::Open,
        };
        let resolved_at = (c.live == Live::No)
            .then(|| (last + secs(self.rng.random_range(60..1_200))).min(now - secs(60)));
        let closed_at = resolved_at
            .map(|r| r + Duration::hours(24))
            .filter(|at| *at < now && self.rng.random_bool(0.6));
        let queued_at = (!c.bot_only).then(|| c.at + secs(if c.rule.is_some() { 6 } else { 1 }));
        let assigned_at = queued_at.filter(|_| c.agents.1.is_some()).map(|q| {
            let until = tl.first_response.unwrap_or(now).max(q + secs(2));
            let share = if c.escalated {
                0.05
            } else {
                self.rng.random_range(0.1..0.7)
            };
            q + secs(((until - q).num_seconds() as f64 * share) as i64)
        });
        self.history(&c, &tl, queued_at, assigned_at, b);
        let (csat, nps) = self.aftercare(&c, &tl, resolved_at, b);
        self.labels(&c, b);
        let converts = match key {
            "purchase" => 0.45,
            "size" => 0.2,
            _ => 0.0,
        };
        let converted_at = resolved_at
            .filter(|_| self.rng.random_bool(converts))
            .map(|r| r - secs(self.rng.random_range(30..300)));
        if c.fresh
            && let Some(contact) = b.contacts.last_mut()
        {
            (contact.last_inbound_at, contact.updated_at) = (Some(last_inbound), last_inbound);
        }
        if let Some(r) = resolved_at {
            self.resolved.push((c.person.clone(), c.topic, r));
        }
        let live = match c.live {
            Live::No => "history",
            Live::Queued => "queued",
            _ if status == CS::Pending => "pending",
            _ => "assigned",
        };
        *self.counts.entry(live).or_default() += 1;
        b.conversations.push(conversation::Model {
            id: c.id,
            channel_id: c.channel.0,
            contact_id: c.person.id,
            status: if closed_at.is_some() {
                CS::Closed
            } else {
                status
            },
            priority: c.priority,
            topic: Some(key.into()),
            language: Some(LANGS[c.person.lang].into()),
            department_id: c.new_department,
            assignee_id: c.agents.1,
            lock_holder_id: None,
            lock_acquired_at: None,
            lock_last_activity_at: None,
            lock_expires_at: None,
            sla_policy_id: c.policy.0,
            first_response_due_at: Some(c.clock + secs(c.policy.1)),
            resolution_due_at: Some(c.clock + secs(c.policy.2)),
            sla_paused_at: if status == CS::Pending {
                tl.last_outbound
            } else {
                None
            },
            important_wait_due_at: Some(c.clock + Duration::minutes(5)),
            // Checked by the first sweep, which stores the real next check.
            sla_next_at: resolved_at.is_none().then_some(c.clock),
            escalation_level: i32::from(c.escalated),
            transfer_count: i32::from(tl.transferred_at.is_some()),
            reopen_count: 0,
            queued_at,
            assigned_at,
            first_response_at: tl.first_response,
            resolved_at,
            closed_at,
            last_message_at: Some(last),
            last_inbound_at: Some(last_inbound),
            csat,
            nps,
            converted_at,
            conversion_amount_micros: converted_at
                .map(|_| self.rng.random_range(39..450) * 1_000_000),
            archived_at: None,
            created_at: c.at,
            updated_at: closed_at.or(resolved_at).unwrap_or(last),
        });
    }

    /// Assignment history (routing, escalation, transfer) and SLA events.
    fn history(
        &mut self,
        c: &Conv,
        tl: &Timeline,
        queued_at: Option<DateTime<Utc>>,
        assigned_at: Option<DateTime<Utc>>,
        b: &mut Batch,
    ) {
        let ((agent_a, assignee), now) = (c.agents, self.now);
        let (fr_due, warn_at) = (
            c.clock + secs(c.policy.1),
            c.clock + secs(c.policy.1 * 8 / 10),
        );
        let assign =
            |kind: AK, from, to, to_department, reason: &str, actor, at| assignment::ActiveModel {
                conversation_id: Set(c.id),
                kind: Set(kind),
                from_user_id: Set(from),
                to_user_id: Set(to),
                from_department_id: Set(if kind == AK::Transfer {
                    c.department
                } else {
                    None
                }),
                to_department_id: Set(to_department),
                reason: Set(Some(reason.to_string())),
                actor_id: Set(actor),
                created_at: Set(at),
                ..Default::default()
            };
        if let Some(q) = queued_at {
            let (kind, actor) = match assigned_at.map(|_| weighted(&mut self.rng, &[80, 12, 8])) {
                None | Some(0) => (AK::Auto, None),
                Some(1) => (AK::Claim, agent_a),
                Some(_) => (AK::Manual, self.refs.editor),
            };
            let reason = if assigned_at.is_some() {
                "keyword routing"
            } else {
                "no agent available: queued"
            };
            b.assignments.push(assign(
                kind,
                None,
                agent_a,
                c.department,
                reason,
                actor,
                assigned_at.unwrap_or(q),
            ));
        }
        if c.escalated {
            let reason = "first response at 80% of the SLA target";
            b.assignments.push(assign(
                AK::Escalation,
                agent_a,
                assignee,
                c.department,
                reason,
                None,
                warn_at,
            ));
        }
        if let Some(at) = tl.transferred_at {
            let reason = "needs another team";
            b.assignments.push(assign(
                AK::Transfer,
                agent_a,
                assignee,
                c.new_department,
                reason,
                agent_a,
                at,
            ));
        }

        let details = json!({"priority": c.priority, "topic": TOPICS[c.topic].0});
        let mut sla = |kind, level, target, at: DateTime<Utc>, late: Option<i64>| {
            b.sla.push(sla_event::ActiveModel {
                conversation_id: Set(c.id),
                kind: Set(kind),
                level: Set(level),
                target_at: Set(target),
                occurred_at: Set(at),
                late_secs: Set(late),
                details: Set(Some(details.clone())),
                ..Default::default()
            })
        };
        let answered = tl.first_response.unwrap_or(now);
        if !c.bot_only && answered > warn_at && warn_at < now {
            sla(
                SlaKind::FirstResponse,
                SlaLevel::Warning,
                fr_due,
                warn_at,
                None,
            );
        }
        if c.escalated {
            sla(
                SlaKind::FirstResponse,
                SlaLevel::Escalation,
                fr_due,
                warn_at,
                None,
            );
        }
        if !c.bot_only && answered > fr_due && fr_due < now {
            let late = (answered - fr_due).num_seconds();
            sla(
                SlaKind::FirstResponse,
                SlaLevel::Breach,
                fr_due,
                fr_due,
                Some(late),
            );
        }
        let alert = c.at + Duration::minutes(5);
        if c.live == Live::Queued && c.priority >= Priority::High && alert < now {
            sla(SlaKind::ImportantWait, SlaLevel::Alert, alert, alert, None);
        }
    }

    /// CSAT (then sometimes NPS) after resolution, and a team note on some.
    fn aftercare(
        &mut self,
        c: &Conv,
        tl: &Timeline,
        resolved_at: Option<DateTime<Utc>>,
        b: &mut Batch,
    ) -> (Option<i32>, Option<i32>) {
        let (mut csat, mut nps) = (None, None);
        if let Some(resolved) = resolved_at
            && c.person.automated
            && c.agents.1.is_some()
        {
            let answer = self.survey(
                b,
                c,
                SurveyKind::Csat,
                resolved + secs(30),
                &[4, 4, 9, 28, 55],
                1,
                0.55,
            );
            csat = answer.map(|a| a.0);
            if let Some((_, at)) = answer
                && self.rng.random_bool(0.6)
            {
                let weights = [1, 1, 1, 1, 1, 2, 3, 6, 12, 20, 22];
                nps = self
                    .survey(b, c, SurveyKind::Nps, at + secs(10), &weights, 0, 0.8)
                    .map(|a| a.0);
            }
        }
        if let (Some(author), Some(at)) = (c.agents.1, tl.first_response.filter(|_| tl.human))
            && at + secs(45) < self.now
            && self.rng.random_bool(0.25)
        {
            let (l, key) = (local(at), TOPICS[c.topic].0);
            let progress = self.pick(key, "note", ANY).1;
            b.notes.push(note::ActiveModel {
                conversation_id: Set(c.id),
                author_id: Set(author),
                body: Set(format!(
                    "{:02}:{:02} | {key} | {progress}",
                    l.hour(),
                    l.minute()
                )),
                created_at: Set(at + secs(45)),
                ..Default::default()
            });
        }
        (csat, nps)
    }

    /// Tags by topic, repeat and VIP; a lead-qualification run on wholesale requests.
    fn labels(&mut self, c: &Conv, b: &mut Batch) {
        let key = TOPICS[c.topic].0;
        let mut tags = match (key, c.variant) {
            ("size", _) => vec!["size-question"],
            ("return", 1) => vec!["damaged", "refund"],
            ("return", _) if self.rng.random_bool(0.5) => vec!["refund"],
            ("invoice", _) => vec!["invoice-request"],
            ("price_complaint", _) => vec!["complaint"],
            ("purchase", _) if self.rng.random_bool(0.2) => vec!["pre-order"],
            _ => vec![],
        };
        tags.extend(
            c.repeat
                .then_some("repeat")
                .into_iter()
                .chain(c.person.vip.then_some("vip")),
        );
        for tag_id in tags.into_iter().filter_map(|t| self.refs.tags.get(t)) {
            b.conversation_tags.push(conversation_tag::ActiveModel {
                conversation_id: Set(c.id),
                tag_id: Set(*tag_id),
            });
        }
        if let (Some(flow), "purchase", 1) = (self.refs.flow, key, c.variant) {
            let done = c.live == Live::No;
            let city = CITIES[c.person.lang][0];
            let answers = if done {
                json!({"area": city, "budget": "2000-5000 EUR", "size": "20 pcs S-XL", "timing": "next month"})
            } else {
                json!({"area": city, "budget": "1000 EUR"})
            };
            b.runs.push(lead_flow_run::ActiveModel {
                flow_id: Set(flow),
                conversation_id: Set(c.id),
                step: Set(if done { 4 } else { 2 }),
                answers: Set(answers),
                status: Set(if done {
                    FlowRunStatus::Completed
                } else {
                    FlowRunStatus::Active
                }),
                created_at: Set(c.at + secs(5)),
                updated_at: Set(c.at + secs(if done { 240 } else { 60 })),
                ..Default::default()
            });
        }
    }

    /// Sends a survey; returns the score and its time when the customer answers.
    #[allow(clippy::too_many_arguments)]
    fn survey(
        &mut self,
        b: &mut Batch,
        c: &Conv,
        kind: SurveyKind,
        sent: DateTime<Utc>,
        weights: &[u32],
        lowest: i32,
        answer_rate: f64,
    ) -> Option<(i32, DateTime<Utc>)> {
        let answered_at = Some(sent + secs(self.rng.random_range(30..5_400)))
            .filter(|at| *at < self.now && self.rng.random_bool(answer_rate));
        let score = answered_at.map(|_| weighted(&mut self.rng, weights) as i32 + lowest);
        let expires = sent + Duration::hours(24);
        let status = match score {
            Some(_) => SurveyStatus::Answered,
            None if expires < self.now => SurveyStatus::Expired,
            None => SurveyStatus::Sent,
        };
        b.surveys.push(survey::ActiveModel {
            conversation_id: Set(c.id),
            contact_id: Set(c.person.id),
            agent_id: Set(c.agents.1),
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
}

impl Batch {
    async fn flush(self, db: DatabaseConnection) -> Result<()> {
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

// ------------------------------------------------------------ helpers

fn active<A: ActiveModelTrait, M: IntoActiveModel<A>>(rows: Vec<M>) -> Vec<A> {
    rows.into_iter()
        .map(IntoActiveModel::into_active_model)
        .collect()
}

/// Multi-row inserts, as many rows a statement as the bind-parameter limit allows.
async fn insert<A: ActiveModelTrait + Send>(db: &impl ConnectionTrait, rows: Vec<A>) -> Result<()> {
    // SQLite accepts 32,766 parameters a statement, PostgreSQL 65,535.
    let params = match db.get_database_backend() {
        DbBackend::Postgres => 65_000,
        _ => 32_000,
    };
    let columns = <<A::Entity as EntityTrait>::Column as Iterable>::iter().count();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(params / columns.max(1)).collect();
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
        .await?;
    Ok(row
        .context("no row from the id reservation")?
        .try_get::<i64>("", "first")?)
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

/// Europe/Rome's offset: summer time from the last Sunday of March to the last of October.
fn rome_offset(at: DateTime<Utc>) -> Duration {
    let last_sunday = |month| {
        let d = NaiveDate::from_ymd_opt(at.year(), month, 31)?;
        Some(d - Duration::days(d.weekday().num_days_from_sunday().into()))
    };
    let summer = matches!((last_sunday(3), last_sunday(10)), (Some(s), Some(e)) if (s..e).contains(&at.date_naive()));
    Duration::hours(if summer { 2 } else { 1 })
}

fn local(at: DateTime<Utc>) -> NaiveDateTime {
    at.naive_utc() + rome_offset(at)
}

/// `minute` minutes after midnight of `day`, Rome time.
fn at_local(day: NaiveDate, minute: u32) -> DateTime<Utc> {
    let guess = (day.and_time(NaiveTime::MIN) + Duration::minutes(minute.into())).and_utc();
    guess - rome_offset(guess)
}

/// When the SLA clock starts: at once within business hours (Mon–Fri 09:00–18:00
/// Rome), else at the next opening. Holidays are not taken into account.
fn clock_start(at: DateTime<Utc>) -> DateTime<Utc> {
    let l = local(at);
    let (minute, open_day) = (l.hour() * 60 + l.minute(), |d: NaiveDate| {
        d.weekday().number_from_monday() <= 5
    });
    if open_day(l.date()) && (540..1080).contains(&minute) {
        return at;
    }
    let mut day = l.date() + Duration::days(i64::from(minute >= 540 || !open_day(l.date())));
    while !open_day(day) {
        day += Duration::days(1);
    }
    at_local(day, 540)
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

    #[test]
    fn tables_parse_and_rules_fit_whatsapp_limits() {
        let texts = load_texts().unwrap();
        for [name, kind, _, lang, _, buttons] in table::<6>(RULES).unwrap() {
            let variants = &texts[&(kind, "bot", lang_index(lang))];
            assert!((1..=5).contains(&variants.len()), "{name}");
            assert!(variants.iter().all(|v| v.chars().count() <= 256), "{name}");
            assert!(
                list(buttons).len() <= 3 && list(buttons).iter().all(|b| b.chars().count() <= 20)
            );
        }
        for (topic, ..) in TOPICS {
            for lang in 0..3 {
                let asks = texts[&(topic, "ask", lang)].len();
                assert_eq!(
                    asks,
                    texts[&(topic, "answer", lang)].len(),
                    "{topic} {lang}"
                );
            }
        }
        assert_eq!(table::<6>(STAFF).unwrap().len(), 10);
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
        assert!(
            summary.contains("50 conversations") && summary.contains("2 queued"),
            "{summary}"
        );
        let db = &domain.db;
        assert_eq!(count::<conversation::Entity>(db).await, 50);
        assert!(count::<message::Entity>(db).await > 100);
        assert!(count::<billing_ledger::Entity>(db).await > 0);
        assert!(count::<user::Entity>(db).await >= 10);
        assert!(count::<assignment::Entity>(db).await > 0);
        let convs = conversation::Entity::find().all(db).await.unwrap();
        let is_open = |c: &&conversation::Model| c.status == CS::Open;
        assert!(
            convs
                .iter()
                .filter(is_open)
                .any(|c| c.assignee_id.is_none() && c.queued_at.is_some())
        );
        assert!(
            convs
                .iter()
                .filter(is_open)
                .any(|c| c.assignee_id.is_some() && c.assigned_at.is_some())
        );
        assert!(
            convs
                .iter()
                .any(|c| matches!(c.status, CS::Resolved | CS::Closed) && c.csat.is_some())
        );
        let answered = survey::Column::Status.eq(SurveyStatus::Answered);
        let answered = survey::Entity::find()
            .filter(answered)
            .count(db)
            .await
            .unwrap();
        let scores: usize = convs
            .iter()
            .map(|c| usize::from(c.csat.is_some()) + usize::from(c.nps.is_some()))
            .sum();
        assert_eq!(answered as usize, scores);
        let messages = message::Entity::find().all(db).await.unwrap();
        for c in &convs {
            let mine: Vec<_> = messages
                .iter()
                .filter(|m| m.conversation_id == c.id)
                .collect();
            assert!(mine.iter().all(|m| m.created_at <= domain.clock.now()));
            assert_eq!(c.last_message_at, mine.iter().map(|m| m.created_at).max());
            if let (Some(first), Some(resolved)) = (c.first_response_at, c.resolved_at) {
                assert!(
                    c.created_at <= first && first <= resolved,
                    "conversation {}",
                    c.id
                );
            }
        }

        run(&domain, 50).await.unwrap();
        assert_eq!(count::<conversation::Entity>(db).await, 100);
        assert_eq!(count::<department::Entity>(db).await, 5);
        assert_eq!(count::<channel::Entity>(db).await, 2);
        assert_eq!(count::<user::Entity>(db).await, 11);
        let live = conversation::Column::Status.is_in([CS::Open, CS::Pending]);
        let live = conversation::Entity::find()
            .filter(live)
            .all(db)
            .await
            .unwrap();
        let mut seen = HashSet::new();
        assert!(
            live.iter()
                .all(|c| seen.insert((c.contact_id, c.channel_id)))
        );
        for agent in user::Entity::find()
            .filter(user::Column::Role.eq(Role::Agent))
            .all(db)
            .await
            .unwrap()
        {
            let load = live
                .iter()
                .filter(|c| c.assignee_id == Some(agent.id))
                .count();
            assert!(
                load as i32 <= agent.max_concurrent,
                "{} has {load}",
                agent.email
            );
        }
    }
}
