//! Generation in memory (no database), with the domain check on every command.

use chrono::Utc;

use crate::check;
use crate::gen::Gen;
use crate::out::Out;
use crate::Existing;

/// Generates in memory (no database), with the domain check on every command.
fn generate(events: u64, seed: u64) -> Gen {
    let out = Out::new(Box::new(|_| true), 2_000, Some(check::LogChecker::new()));
    let end = Utc::now();
    let mut g = Gen::new(events, seed, end - chrono::Duration::days(30), end, out);
    g.run(&Existing::default()).unwrap();
    g
}

#[test]
fn a_seeded_history_is_exact_complete_and_passes_the_domain_check() {
    let g = generate(5_000, 7);
    assert_eq!(g.out.events, 5_000);
    let missing: Vec<_> = (g.schedule.report().into_iter())
        .filter(|(_, _, done)| *done == 0)
        .collect();
    assert!(missing.is_empty(), "kinds that never ran: {missing:?}");
    let catalogue = charter_events::schemas::all_schemas();
    for t in g.out.per_type.keys() {
        assert!(catalogue.iter().any(|s| s.event_type == *t), "{t}");
    }
}

#[test]
fn the_same_seed_gives_the_same_history_shape() {
    let (a, b) = (generate(3_000, 11), generate(3_000, 11));
    assert_eq!(a.out.per_type, b.out.per_type);
    assert_eq!(a.out.commands, b.out.commands);
}
