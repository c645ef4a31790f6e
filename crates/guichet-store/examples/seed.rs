//! Fills a store with generated dossiers, for the queue benchmark
//! (`bench/queue.sh`): each has its creation, answers and submission, and
//! one in three a decision, written through the same group-commit path as
//! the service.
//!
//!   cargo run --release -p guichet-store --example seed -- URL DATA_KEY_HEX COUNT

use guichet_core::{Command, Decision, Dossier, Outcome, UserId};
use guichet_store::{DataKey, NewEvents, Options, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, key, count] = args.as_slice() else {
        return Err("usage: seed URL DATA_KEY_HEX COUNT".into());
    };
    let count: usize = count.parse()?;
    let dir = std::env::temp_dir().join("guichet-seed-blobs");
    let store = Store::open(Options {
        url: url.clone(),
        blob_dir: dir,
        blob_store: None,
        blob_store_options: Vec::new(),
        data_key: DataKey::from_hex(key)?,
        max_connections: 4,
    })
    .await?;
    store.migrate().await?;
    let next = Arc::new(AtomicUsize::new(0));
    let start = std::time::Instant::now();
    let tasks: Vec<_> = (0..256)
        .map(|_| {
            let (store, next) = (store.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        return Ok::<(), guichet_store::StoreError>(());
                    }
                    store.append(dossier(i)).await?;
                    if i % 100_000 == 0 && i > 0 {
                        eprintln!("{i} dossiers");
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{count} dossiers in {secs:.1} s ({:.0}/s)", count as f64 / secs);
    store.close().await;
    Ok(())
}

fn dossier(i: usize) -> NewEvents {
    let t = 1_588_000_000 + i as i64;
    let who = UserId(format!("u_citizen_{}", i % 50_000));
    let answers = serde_json::json!({
        "income_support": "cerb",
        "home": {"line1": format!("{i}, rue Saint-Denis"), "city": "Montréal", "province": "QC", "postal_code": "H2J 2L4"},
        "housing_type": "ordinary", "lease_start": "2019-07-01", "lease_end": "2020-06-30", "lease_copy": "bail.pdf",
        "told_landlord": true, "monthly_rent": "800.00 $", "months_covered": "both", "portion": "all",
        "landlord_name": "Gestion Tremblay", "landlord_email": "loyers@tremblay.example",
        "landlord_bank": {"institution": "815", "transit": "12345", "account": "1234567"}
    });
    let program = if i % 4 == 0 { "shq-menages-en-attente-2020" } else { "shq-pret-loyer-2020" };
    let mut events = Dossier::create(program, who.clone(), t).unwrap_or_default();
    let mut d = Dossier::replay(&events).expect("replay");
    for cmd in [Command::Answer { answers }, Command::Submit] {
        let e = d.handle(cmd, &who, t).expect("command");
        d = d.after(&e).expect("after");
        events.extend(e);
    }
    if i % 3 == 0 {
        let decision = Decision {
            outcome: if i % 2 == 0 { Outcome::Approved } else { Outcome::Refused },
            amount: (i % 2 == 0).then_some(150_000),
            computed_amount: (i % 2 == 0).then_some(150_000),
            reasons: if i % 2 == 0 { vec![] } else { vec!["lease_in_force".into()] },
            justification: String::new(),
            program_version: "seed".into(),
            evaluation: serde_json::json!({"status": "generated"}),
            by: UserId("u_worker".into()),
            at: t + 86_400,
        };
        let e = d
            .handle(Command::Decide { decision, agreement_required: false }, &UserId("u_worker".into()), t + 86_400)
            .expect("decide");
        d = d.after(&e).expect("after");
        events.extend(e);
    }
    NewEvents {
        dossier: format!("d_seed{i:012}"),
        expected_version: 0,
        program_version: Some("seed".into()),
        events,
        actor: Some(who.0.clone()),
        after: d,
        flags: if i % 97 == 0 { vec!["possible_duplicate:bank:d_x".into()] } else { vec![] },
        keys: vec![],
        at: t,
        payment_line: None,
    }
}
