//! Word lists that make the synthetic history read like a real one.

#[rustfmt::skip]
pub const GIVEN: &[&str] = &[
    "Aaliyah", "Adam", "Aisha", "Alejandro", "Alice", "Amir", "Ana", "Andrei", "Anna", "Arjun",
    "Ben", "Bianca", "Carlos", "Chen", "Chloe", "Daniel", "David", "Diego", "Elena", "Emma",
    "Eric", "Fatima", "Felix", "Fiona", "Grace", "Hana", "Hannah", "Hiro", "Ibrahim", "Ines",
    "Isabel", "Ivan", "Jack", "James", "Jana", "Javier", "Jin", "Joao", "Jonas", "Julia", "Kai",
    "Karim", "Kate", "Lars", "Laura", "Leila", "Liam", "Lucas", "Lucia", "Maria", "Marta",
    "Mateo", "Mei", "Mia", "Michael", "Mohamed", "Nadia", "Nina", "Noah", "Olga", "Omar", "Paul",
    "Pedro", "Priya", "Rafael", "Rahul", "Rosa", "Ruth", "Sam", "Sara", "Sean", "Sofia", "Sven",
    "Tariq", "Thomas", "Tom", "Valentina", "Victor", "Wei", "Yara", "Yuki", "Zoe",
];

#[rustfmt::skip]
pub const FAMILY: &[&str] = &[
    "Abe", "Ali", "Andersen", "Bauer", "Becker", "Brown", "Costa", "Cruz", "Das", "Dubois",
    "Fischer", "Garcia", "Gonzalez", "Gupta", "Hansen", "Hoffmann", "Ivanova", "Jensen",
    "Johnson", "Kim", "Klein", "Kowalski", "Kumar", "Larsen", "Lee", "Li", "Lopez", "Martin",
    "Meyer", "Miller", "Moreau", "Muller", "Nakamura", "Nguyen", "Nielsen", "Novak", "Okafor",
    "Olsen", "Park", "Patel", "Perez", "Petrov", "Rossi", "Russo", "Sato", "Schmidt", "Schneider",
    "Silva", "Singh", "Smith", "Suzuki", "Tanaka", "Taylor", "Thomas", "Wagner", "Walker", "Wang",
    "Weber", "Williams", "Wilson", "Wong", "Yamamoto", "Zhang",
];

/// Tenant (customer) names; slugs are derived from them.
#[rustfmt::skip]
pub const COMPANIES: &[&str] = &[
    "Acme Holdings", "Acme EMEA", "Acme Americas", "Northwind Traders", "Contoso", "Fabrikam",
    "Globex", "Initech", "Umbrella Health", "Stark Industries", "Wayne Logistics", "Hooli",
    "Pied Piper", "Vandelay Imports", "Soylent Foods", "Tyrell Systems", "Cyberdyne",
    "Wonka Confections", "Oceanic Airlines", "Massive Dynamic", "Aperture Labs", "Black Mesa",
    "Blue Sun", "Gringotts", "Monarch Solutions", "Nakatomi Trading", "Oscorp",
    "Prestige Worldwide", "Sirius Cybernetics", "Spacely Sprockets", "Sterling Cooper",
    "Tessier Ashpool", "Virtucon", "Weyland Yutani", "Zorg Industries", "Dunder Mifflin",
    "Bluth Company", "Los Pollos Hermanos", "Krusty Krab", "Duff Brewing", "Planet Express",
    "Good Burger", "Cogswell Cogs", "Ollivanders", "Strickland Propane", "Rekall",
    "Omni Consumer Products", "Buy n Large",
];

#[rustfmt::skip]
pub const WORKSPACES: &[&str] = &[
    "production", "staging", "development", "sandbox", "analytics", "eu-west", "us-east",
    "ap-south", "data-platform", "internal-tools", "marketing-site", "mobile", "payments",
    "ml-research", "qa", "customer-portal", "billing", "search",
];

#[rustfmt::skip]
pub const GROUPS: &[&str] = &[
    "engineering", "platform", "sre", "security", "data", "design", "product", "sales",
    "sales-emea", "sales-amer", "marketing", "support", "support-tier-2", "finance", "legal",
    "hr", "it-helpdesk", "contractors", "interns", "leadership", "mobile-team", "web-team", "qa",
    "partners",
];

#[rustfmt::skip]
pub const ROLES: &[&str] = &[
    "billing-admin", "billing-viewer", "support-agent", "support-lead", "developer",
    "release-manager", "security-auditor", "data-analyst", "finance-viewer", "ops-oncall",
    "crm-editor", "crm-viewer", "storage-admin", "storage-reader", "dashboard-editor",
    "workspace-owner", "read-only", "user-manager",
];

/// The services whose permissions the seeded registry holds: (service, [(name, label)]).
pub const SERVICES: &[(&str, &[(&str, &str)])] = &[
    (
        "billing",
        &[
            ("billing.invoices.read", "Read invoices"),
            ("billing.invoices.write", "Create and void invoices"),
            ("billing.payments.create", "Take payments"),
            ("billing.payments.refund", "Refund payments"),
            ("billing.plans.manage", "Manage plans and prices"),
            ("billing.reports.read", "Read revenue reports"),
        ],
    ),
    (
        "crm",
        &[
            ("crm.contacts.read", "Read contacts"),
            ("crm.contacts.write", "Create and edit contacts"),
            ("crm.contacts.export", "Export contacts"),
            ("crm.deals.read", "Read deals"),
            ("crm.deals.write", "Create and edit deals"),
            ("crm.pipelines.manage", "Manage sales pipelines"),
        ],
    ),
    (
        "storage",
        &[
            ("storage.buckets.read", "List buckets"),
            ("storage.buckets.create", "Create buckets"),
            ("storage.buckets.delete", "Delete buckets"),
            ("storage.objects.read", "Read objects"),
            ("storage.objects.write", "Write objects"),
            ("storage.objects.delete", "Delete objects"),
        ],
    ),
    (
        "analytics",
        &[
            ("analytics.dashboards.read", "View dashboards"),
            ("analytics.dashboards.write", "Edit dashboards"),
            ("analytics.queries.run", "Run ad-hoc queries"),
            ("analytics.exports.create", "Export datasets"),
        ],
    ),
    (
        "support",
        &[
            ("support.tickets.read", "Read tickets"),
            ("support.tickets.write", "Answer tickets"),
            ("support.tickets.assign", "Assign tickets"),
            ("support.tickets.close", "Close tickets"),
            ("support.macros.manage", "Manage reply macros"),
        ],
    ),
];

/// A lower-case, URL-safe handle: "Los Pollos Hermanos" -> "los-pollos-hermanos".
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}
