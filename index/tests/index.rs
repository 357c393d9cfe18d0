//! The indexing job on real (tiny) models: unchanged text is never embedded twice, an edit
//! re-embeds only the units that hold it, deleted files leave the index, and a damaged or newer
//! database is a clear error.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use tunelens_index::{index_files, IndexOptions, IndexReport, Store, StoreError, UnitSettings};
use tunelens_models::encoders::{parse_device, Clamp};

fn fixture_model() -> Clamp {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/clamp-tiny-bert");
    assert!(
        dir.exists(),
        "{} missing: the shared fixtures must sit beside the repo",
        dir.display()
    );
    let device = parse_device("cpu").expect("cpu");
    Clamp::load_dir(&dir, &device).expect("fixture model loads")
}

/// sled itself, to plant bad data; it frees its lock a moment after a handle is dropped, so
/// a reopen may have to wait for it.
fn raw_open(path: &Path) -> sled::Db {
    for _ in 0..100 {
        if let Ok(db) = sled::open(path) {
            return db;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    sled::open(path).expect("sled opens")
}

struct Tmp(PathBuf);

impl Tmp {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "tunelens-index-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&p).expect("mkdir");
        Self(p)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const JIG: &str = "X:1\nT:The Test Jig\nR:jig\nM:6/8\nL:1/8\nK:G\n|:GAB c2d|e2f g3|gfe dcB|AGF G3:|\n|:Bcd e2f|g2a b3|bag fed|edc B3:|\n";
const REEL: &str = "X:2\nT:The Test Reel\nR:reel\nM:4/4\nL:1/8\nK:D\n|:DFAF DFAF|GBdB GBdB|AFdF AFdF|GEcE GEcE:|\n";

fn options(root: &Path) -> IndexOptions {
    IndexOptions {
        corpus: "workspace".into(),
        settings: UnitSettings::default(),
        max_bytes: 1 << 20,
        batch: 16,
        roots: vec![root.to_owned()],
        collections_under: None,
    }
}

fn run(store: &Store, model: &Clamp, files: &[PathBuf], root: &Path) -> IndexReport {
    let cancel = AtomicBool::new(false);
    index_files(
        store,
        model,
        "tiny-bert",
        files,
        &options(root),
        &|_| {},
        &cancel,
    )
    .expect("indexing works")
}

#[test]
fn second_run_embeds_nothing_and_an_edit_only_its_windows() {
    let tmp = Tmp::new("incremental");
    let root = tmp.0.join("tunes");
    std::fs::create_dir_all(&root).expect("mkdir");
    let jig = root.join("jig.abc");
    let reel = root.join("reel.abc");
    std::fs::write(&jig, JIG).expect("write");
    std::fs::write(&reel, REEL).expect("write");
    let files = vec![jig.clone(), reel.clone()];
    let model = fixture_model();
    let store = Store::open(&tmp.0.join("db"), false).expect("open");

    let first = run(&store, &model, &files, &root);
    // Jig: 8 bars → 5 windows of 4 + the tune; reel: 4 bars → 1 window + the tune.
    assert_eq!(first.files_indexed, 2);
    assert_eq!(first.progress.embedded, 8);
    assert_eq!(first.progress.cached, 0);
    let record = store
        .file("workspace", &jig.display().to_string())
        .expect("read")
        .expect("record");
    assert_eq!(record.units.len(), 6);
    assert_eq!(record.bars.len(), 8);
    assert_eq!(record.bars[4].number, 5);
    assert_eq!(record.bars[4].range.start_lc.line, 8);
    assert_eq!(record.tunes[0].title.as_deref(), Some("The Test Jig"));

    let second = run(&store, &model, &files, &root);
    assert_eq!(second.progress.embedded, 0);
    assert_eq!(second.files_unchanged, 2);

    // Change bar 8 (the last): only the windows holding it (one: bars 5-8) and the tune change.
    std::fs::write(&jig, JIG.replace("edc B3:|", "edc B2A:|")).expect("write");
    let third = run(&store, &model, &files, &root);
    assert_eq!(third.files_indexed, 1);
    assert_eq!(third.files_unchanged, 1);
    assert_eq!(third.progress.embedded, 2, "{third:?}");

    // Change bar 4: windows 1-4, 2-5, 3-6, 4-7 and the tune.
    std::fs::write(
        &jig,
        JIG.replace("edc B3:|", "edc B2A:|")
            .replace("AGF G3:|", "AGF G2A:|"),
    )
    .expect("write");
    let fourth = run(&store, &model, &files, &root);
    assert_eq!(fourth.progress.embedded, 5, "{fourth:?}");

    // A deleted file leaves the index.
    std::fs::remove_file(&reel).expect("rm");
    let fifth = run(&store, &model, std::slice::from_ref(&jig), &root);
    assert_eq!(fifth.files_removed, 1);
    assert!(store
        .file("workspace", &reel.display().to_string())
        .expect("read")
        .is_none());
}

#[test]
fn vectors_are_shared_by_identical_music_across_files() {
    let tmp = Tmp::new("shared");
    let a = tmp.0.join("a.abc");
    let b = tmp.0.join("b.abc");
    std::fs::write(&a, JIG).expect("write");
    // The same music under another title: the tune text differs (T:), the passages do not.
    std::fs::write(&b, JIG.replace("The Test Jig", "Another Name")).expect("write");
    let model = fixture_model();
    let store = Store::open(&tmp.0.join("db"), false).expect("open");
    let report = run(&store, &model, &[a, b], &tmp.0);
    assert_eq!(
        report.progress.embedded, 7,
        "5 passages + 2 tunes: {report:?}"
    );
    assert_eq!(report.progress.cached, 0);
}

#[test]
fn unreadable_files_are_reported_not_fatal() {
    let tmp = Tmp::new("bad");
    let good = tmp.0.join("good.abc");
    let binary = tmp.0.join("binary.abc");
    std::fs::write(&good, REEL).expect("write");
    std::fs::write(&binary, b"X:1\n\0\0").expect("write");
    let model = fixture_model();
    let store = Store::open(&tmp.0.join("db"), false).expect("open");
    let report = run(&store, &model, &[good, binary.clone()], &tmp.0);
    assert_eq!(report.files_indexed, 1);
    assert_eq!(report.failed.len(), 1);
    assert!(
        report.failed[0].contains(&binary.display().to_string()),
        "{:?}",
        report.failed
    );
    assert!(report.failed[0].contains("line 2"), "{:?}", report.failed);
}

#[test]
fn newer_and_older_schemas_are_refused_with_advice() {
    let tmp = Tmp::new("schema");
    let path = tmp.0.join("db");
    {
        let db = raw_open(&path);
        let meta = db.open_tree("meta").expect("tree");
        meta.insert("schema", &999u32.to_be_bytes())
            .expect("insert");
        db.flush().expect("flush");
    }
    match Store::open(&path, false) {
        Err(e @ StoreError::TooNew { .. }) => {
            assert!(e.to_string().contains("newer"), "{e}");
            assert!(e.to_string().contains("rebuild"), "{e}");
        }
        other => panic!("expected TooNew, got {:?}", other.err()),
    }
    // The rebuild that the error offers replaces it.
    assert!(Store::open(&path, true).is_ok());
    {
        let db = raw_open(&path);
        let meta = db.open_tree("meta").expect("tree");
        meta.insert("schema", &0u32.to_be_bytes()).expect("insert");
        db.flush().expect("flush");
    }
    assert!(matches!(
        Store::open(&path, false),
        Err(StoreError::TooOld { .. })
    ));
    // With --rebuild the old one is emptied and reopened.
    assert!(Store::open(&path, true).is_ok());
}

#[test]
fn stamps_follow_records_and_an_index_without_them_gets_them() {
    let tmp = Tmp::new("stamps");
    let root = tmp.0.join("tunes");
    std::fs::create_dir_all(&root).expect("mkdir");
    let jig = root.join("jig.abc");
    let reel = root.join("reel.abc");
    std::fs::write(&jig, JIG).expect("write");
    std::fs::write(&reel, REEL).expect("write");
    let model = fixture_model();
    let path = tmp.0.join("db");
    let names = [jig.display().to_string(), reel.display().to_string()];
    {
        let store = Store::open(&path, false).expect("open");
        run(&store, &model, &[jig.clone(), reel.clone()], &root);
        for name in &names {
            let record = store
                .file("workspace", name)
                .expect("read")
                .expect("record");
            let stamp = store.stamp("workspace", name).expect("read");
            assert_eq!(stamp, Some(record.stamp()));
        }
        let mut listed = store.paths("workspace").expect("paths");
        listed.sort();
        let mut expected = names.to_vec();
        expected.sort();
        assert_eq!(listed, expected);
        assert_eq!(store.corpora().expect("corpora"), vec!["workspace"]);
        // A deleted file takes its stamp along.
        std::fs::remove_file(&reel).expect("rm");
        run(&store, &model, std::slice::from_ref(&jig), &root);
        assert_eq!(store.stamp("workspace", &names[1]).expect("read"), None);
        assert_eq!(
            store.paths("workspace").expect("paths"),
            vec![names[0].clone()]
        );
    }
    // An index written before stamps existed: they are made from its records on open.
    {
        let db = raw_open(&path);
        db.drop_tree("stamps").expect("drop");
        db.flush().expect("flush");
    }
    let store = Store::open(&path, false).expect("open");
    let record = store
        .file("workspace", &names[0])
        .expect("read")
        .expect("record");
    assert_eq!(
        store.stamp("workspace", &names[0]).expect("read"),
        Some(record.stamp())
    );
    let again = run(&store, &model, std::slice::from_ref(&jig), &root);
    assert_eq!((again.files_unchanged, again.progress.embedded), (1, 0));
}

#[test]
fn releasing_the_cache_keeps_every_record_and_vector() {
    let tmp = Tmp::new("release");
    let root = tmp.0.join("tunes");
    std::fs::create_dir_all(&root).expect("mkdir");
    let jig = root.join("jig.abc");
    std::fs::write(&jig, JIG).expect("write");
    let model = fixture_model();
    let store = Store::open(&tmp.0.join("db"), false).expect("open");
    run(&store, &model, std::slice::from_ref(&jig), &root);
    let name = jig.display().to_string();
    let before = store
        .file("workspace", &name)
        .expect("read")
        .expect("record");
    assert!(store.touched() > 0, "indexing went through the database");
    assert!(
        store.release_cache().expect("reopens"),
        "nothing held the database"
    );
    assert_eq!(store.touched(), 0, "counted from the reopening");
    let after = store
        .file("workspace", &name)
        .expect("read")
        .expect("record");
    assert_eq!(before, after);
    for unit in &after.units {
        assert!(store
            .vector("tiny-bert", &unit.key)
            .expect("read")
            .is_some());
    }
    // Writes go on as before: an edit is indexed into the reopened database.
    std::fs::write(&jig, JIG.replace("edc B3:|", "edc B2A:|")).expect("write");
    let edit = run(&store, &model, std::slice::from_ref(&jig), &root);
    assert_eq!((edit.files_indexed, edit.progress.embedded), (1, 2));
}

#[test]
fn a_damaged_record_is_a_clear_error() {
    let tmp = Tmp::new("corrupt");
    let path = tmp.0.join("db");
    {
        let store = Store::open(&path, false).expect("open");
        drop(store);
        let db = raw_open(&path);
        let files = db.open_tree("files").expect("tree");
        files
            .insert(b"workspace\0x.abc", b"{not json".to_vec())
            .expect("insert");
        db.flush().expect("flush");
    }
    let store = Store::open(&path, false).expect("open");
    let err = store.files("workspace").expect_err("damaged");
    assert!(err.to_string().contains("damaged record"), "{err}");
    assert!(err.to_string().contains("x.abc"), "{err}");
    assert!(err.to_string().contains("rebuild"), "{err}");
    drop(store);
    // The rebuild the error offers clears it.
    let store = Store::open(&path, true).expect("rebuild");
    assert!(store.files("workspace").expect("readable").is_empty());
}

#[test]
fn a_database_in_use_is_a_clear_error_and_a_dropped_one_reopens() {
    let tmp = Tmp::new("lock");
    let path = tmp.0.join("db");
    // Reopening right after a drop must work every time (sled frees its lock a moment late).
    for _ in 0..50 {
        let store = Store::open(&path, false).expect("open");
        drop(store);
    }
    let held = Store::open(&path, false).expect("open");
    match Store::open(&path, false) {
        Err(e @ StoreError::InUse { .. }) => assert!(e.to_string().contains("in use"), "{e}"),
        other => panic!("expected InUse, got {:?}", other.err()),
    }
    drop(held);
}
