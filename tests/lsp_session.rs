//! `tunelens lsp` driven as an editor drives it: initialize, open a file, hover, similar
//! passages, references, code lens, the genre code action applied, a bar changed and hovered
//! again, diagnostics at exact UTF-16 ranges, a quotation of a reference corpus typed in and
//! reported as it is typed, shutdown and exit. Nothing but LSP frames on
//! stdout, though logs are on at debug level.

mod common;

use common::rpc::{file_uri, LspClient};
use common::{shared_fixture, TempDir};
use serde_json::{json, Value};

const ORIGINAL: &str = "X:1\nT:Original\nM:6/8\nL:1/8\nK:G\n|:GAB c2d|e2f g3|gfe dcB|AGF G3:|\n|:Bcd e2f|g2a b3|bag fed|edc B3:|\n";
/// Bars 5-8 of the original as its bars 3-6, between music of its own.
const QUOTING: &str = "X:7\nT:Borrower\nM:6/8\nL:1/8\nK:G\nDED DEF|GFG AGA|\nBcd e2f|g2a b3|bag fed|edc B3|\nFAF FAF|GBG GBG|\n";

fn start(tmp: &TempDir) -> (LspClient, std::path::PathBuf) {
    start_with(tmp, &[])
}

/// As [`start`], with more command-line arguments (`--corpus DIR`).
fn start_with(tmp: &TempDir, extra: &[&str]) -> (LspClient, std::path::PathBuf) {
    start_model(tmp, &shared_fixture("clamp-tiny-bert"), extra)
}

/// As [`start_with`], on the model in `model`.
fn start_model(
    tmp: &TempDir,
    model: &std::path::Path,
    extra: &[&str],
) -> (LspClient, std::path::PathBuf) {
    start_client(
        tmp,
        model,
        extra,
        json!({"window": {"workDoneProgress": true}}),
    )
}

/// As [`start_model`], for a client with these `capabilities`.
fn start_client(
    tmp: &TempDir,
    model: &std::path::Path,
    extra: &[&str],
    capabilities: Value,
) -> (LspClient, std::path::PathBuf) {
    let ws = tmp.path().join("my tunes");
    std::fs::create_dir(&ws).expect("mkdir");
    std::fs::write(ws.join("quoting.abc"), QUOTING).expect("write");
    std::fs::write(ws.join("original.abc"), ORIGINAL).expect("write");
    let db = tmp.path().join("db");
    let mut args = vec![
        "lsp",
        "--model",
        model.to_str().expect("path"),
        "--db",
        db.to_str().expect("path"),
        "--device",
        "cpu",
    ];
    args.extend(extra);
    let mut client = LspClient::start(&args, tmp.path().join("stderr.log"));
    let ws = std::fs::canonicalize(&ws).expect("canonical");
    let init = client.request(
        "initialize",
        json!({
            "processId": null,
            "capabilities": capabilities,
            "workspaceFolders": [{"uri": file_uri(&ws), "name": "ws"}],
            "initializationOptions": {"windowBars": 4}
        }),
    );
    assert_eq!(init["serverInfo"]["name"], "tunelens");
    assert_eq!(
        init["capabilities"]["textDocumentSync"], 2,
        "incremental sync"
    );
    client.notify("initialized", json!({}));
    (client, ws)
}

fn hover_text(h: &Value) -> String {
    h["contents"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn hover_similar_lens_action_edit_and_hover_again() {
    let tmp = TempDir::new("lsp");
    let (mut client, ws) = start(&tmp);
    let status = client.wait_indexed();
    let corpora = status["corpora"].as_array().expect("corpora");
    assert_eq!(corpora[0]["name"], "workspace", "{status}");
    assert_eq!(corpora[0]["files"], 2, "{status}");
    // The daemon's own account of its memory (Linux, glibc: where this runs).
    let memory = &status["memory"];
    let bytes = |k: &str| memory[k].as_u64().unwrap_or(0);
    assert!(bytes("resident") > 1 << 20, "{status}");
    assert!(bytes("residentPeak") >= bytes("resident"), "{status}");
    assert!(bytes("heapLive") > 0, "{status}");

    let path = ws.join("original.abc");
    let uri = file_uri(&path);
    let mut text = ORIGINAL.to_owned();
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "abc", "version": 1, "text": text}}),
    );

    // Line 6 (0-based) holds bars 5-8, quoted as bars 3-6 of the Borrower.
    let at = json!({"textDocument": {"uri": uri}, "position": {"line": 6, "character": 3}});
    let hover = client.request("textDocument/hover", at.clone());
    let h = hover_text(&hover);
    assert!(h.contains("**Bar 5**"), "{h}");
    assert!(h.contains("**Borrower**, bars 3–6"), "{h}");
    assert!(h.contains("quoting.abc:7"), "{h}");
    assert!(h.contains("same key, 0 of"), "the explainer's line: {h}");
    // The bar with its bar lines: `|:Bcd e2f|`.
    assert_eq!(
        hover["range"],
        json!({"start": {"line": 6, "character": 0}, "end": {"line": 6, "character": 10}}),
        "{hover}"
    );

    let similar = client.request(
        "tunelens/similar",
        json!({
            "textDocument": {"uri": uri}, "position": {"line": 6, "character": 3}, "k": 5
        }),
    );
    assert_eq!(similar["query"]["bars"], json!([5, 8]));
    let top = &similar["matches"][0];
    assert!(
        top["uri"].as_str().expect("uri").ends_with("quoting.abc"),
        "{top}"
    );
    assert_eq!(top["bars"], json!([3, 6]));
    assert_eq!(top["range"]["start"], json!({"line": 6, "character": 0}));
    assert!(top["score"].as_f64().expect("score") > 0.999, "{top}");
    for m in similar["matches"].as_array().expect("matches") {
        let own = m["uri"] == json!(uri)
            && m["bars"][0].as_u64() <= Some(8)
            && m["bars"][1].as_u64() >= Some(5);
        assert!(!own, "the query's own place came back: {m}");
    }

    let refs = client.request(
        "textDocument/references",
        json!({
            "textDocument": {"uri": uri}, "position": {"line": 6, "character": 3},
            "context": {"includeDeclaration": false}
        }),
    );
    let first = &refs.as_array().expect("locations")[0];
    assert!(
        first["uri"].as_str().expect("uri").ends_with("quoting.abc"),
        "{refs}"
    );

    let lenses = client.request(
        "textDocument/codeLens",
        json!({"textDocument": {"uri": uri}}),
    );
    let lenses = lenses.as_array().expect("lenses");
    assert_eq!(lenses.len(), 1);
    let title = lenses[0]["command"]["title"].as_str().expect("title");
    assert!(
        title.starts_with("rhythm: ") && title.contains(" · "),
        "{title}"
    );
    assert_eq!(lenses[0]["command"]["command"], "tunelens.suggestGenre");

    // The code action sets R: to the lens's first label; apply its edit and check the text.
    let actions = client.request(
        "textDocument/codeAction",
        json!({
            "textDocument": {"uri": uri},
            "range": {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 0}},
            "context": {"diagnostics": []}
        }),
    );
    let action = &actions.as_array().expect("actions")[0];
    let best = title["rhythm: ".len()..].split(' ').next().expect("label");
    assert!(
        action["title"]
            .as_str()
            .expect("title")
            .starts_with("Set R: "),
        "{action}"
    );
    let edits = action["edit"]["changes"][&uri].as_array().expect("edits");
    assert_eq!(edits.len(), 1);
    let edit = &edits[0];
    assert_eq!(
        edit["range"]["start"],
        json!({"line": 4, "character": 0}),
        "just before K:, where the editor plugins put it too"
    );
    let new_text = edit["newText"].as_str().expect("text");
    assert!(
        new_text.starts_with(&format!("R:{best}")) && new_text.ends_with('\n'),
        "{new_text}"
    );
    text.insert_str(text.find("K:G").expect("K:"), new_text);
    assert!(
        text.starts_with(&format!("X:1\nT:Original\nM:6/8\nL:1/8\nR:{best}\nK:G")),
        "{text}"
    );
    client.notify(
        "textDocument/didChange",
        json!({
            "textDocument": {"uri": uri, "version": 2},
            "contentChanges": [{"range": edit["range"], "text": new_text}]
        }),
    );
    // The same action again now replaces the line it wrote.
    let again = client.request(
        "textDocument/codeAction",
        json!({
            "textDocument": {"uri": uri},
            "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
            "context": {"diagnostics": []}
        }),
    );
    let edit2 = &again[0]["edit"]["changes"][&uri][0];
    let end = 2 + best.len() as u64;
    assert_eq!(
        edit2["range"],
        json!({"start": {"line": 4, "character": 0}, "end": {"line": 4, "character": end}})
    );

    // Change bars 5-6 (now on line 7) to the Borrower's opening: the window of bar 5 now
    // matches its bars 1-4.
    let line7 = "|:Bcd e2f|g2a b3|bag fed|edc B3:|";
    client.notify("textDocument/didChange", json!({
        "textDocument": {"uri": uri, "version": 3},
        "contentChanges": [{
            "range": {"start": {"line": 7, "character": 2}, "end": {"line": 7, "character": 16}},
            "text": "DED DEF|GFG AGA"
        }]
    }));
    assert_eq!(&line7[2..16], "Bcd e2f|g2a b3");
    let hover = client.request(
        "textDocument/hover",
        json!({
            "textDocument": {"uri": uri}, "position": {"line": 7, "character": 3}
        }),
    );
    let h = hover_text(&hover);
    assert!(
        h.contains("**Borrower**, bars 1–4"),
        "the hover reflects the edit: {h}"
    );

    // The header hover: nearest tunes and both label sets.
    let hover = client.request(
        "textDocument/hover",
        json!({
            "textDocument": {"uri": uri}, "position": {"line": 1, "character": 3}
        }),
    );
    let h = hover_text(&hover);
    assert!(
        h.contains("**Original**") && h.contains("genre: ") && h.contains("rhythm: "),
        "{h}"
    );
    assert!(h.contains("Nearest tunes") && h.contains("Borrower"), "{h}");

    let classify = client.request(
        "tunelens/classify",
        json!({
            "textDocument": {"uri": uri}, "labels": ["jig", "reel", "hornpipe"]
        }),
    );
    let labels = classify["tunes"][0]["labels"].as_array().expect("labels");
    assert_eq!(labels.len(), 3);
    let sum: f64 = labels
        .iter()
        .map(|l| l["score"].as_f64().expect("score"))
        .sum();
    assert!((sum - 1.0).abs() < 1e-4, "{classify}");

    client.stop();

    // The CLI answers through the same pipeline as the LSP: the same list for the same
    // passage, read from the database the server wrote.
    let at = format!("{}:7:4", path.display());
    let from_cli = common::similar_json(&at, &tmp.path().join("db"), &["-k", "5"]);
    common::same_list(
        from_cli["matches"].as_array().expect("matches"),
        similar["matches"].as_array().expect("matches"),
        "tune",
    );
}

#[test]
fn a_model_with_a_rhythm_head_answers_classify_and_the_lens_with_it() {
    let tmp = TempDir::new("lsp-head");
    // The tiny fixture with a head fitted on its vectors from O'Neill's R: fields.
    let model = tmp.path().join("model");
    std::fs::create_dir(&model).expect("mkdir");
    let fixture = shared_fixture("clamp-tiny-bert");
    for f in std::fs::read_dir(&fixture).expect("fixture") {
        let f = f.expect("entry").path();
        std::fs::copy(&f, model.join(f.file_name().expect("name"))).expect("copy");
    }
    let labelled = common::music21_abc_dir().join("oneills1850/0550-0625.abc");
    let head = common::run(&[
        "train",
        "--head",
        "rhythm",
        "--data",
        labelled.to_str().expect("path"),
        "--out",
        model.to_str().expect("path"),
        "--min-count",
        "4",
    ]);
    assert!(head.ok, "{}", head.stderr);
    let (mut client, ws) = start_model(&tmp, &model, &[]);
    client.wait_indexed();
    let uri = file_uri(&ws.join("original.abc"));
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "abc", "version": 1, "text": ORIGINAL}}),
    );
    let classify = client.request(
        "tunelens/classify",
        json!({"textDocument": {"uri": uri}, "labelSet": "rhythm"}),
    );
    let mut labels: Vec<&str> = classify["tunes"][0]["labels"]
        .as_array()
        .expect("labels")
        .iter()
        .map(|l| l["label"].as_str().expect("label"))
        .collect();
    labels.sort();
    // The head's three labels, not the shipped set's thirteen prompts.
    assert_eq!(labels, ["air", "jig", "waltz"], "{classify}");
    let lenses = client.request(
        "textDocument/codeLens",
        json!({"textDocument": {"uri": uri}}),
    );
    let title = lenses[0]["command"]["title"].as_str().unwrap_or_default();
    assert!(
        ["air", "jig", "waltz"].iter().any(|l| title.contains(l)),
        "{lenses}"
    );
    client.stop();
}

#[test]
fn diagnostics_land_at_utf16_ranges_in_crlf_files() {
    let tmp = TempDir::new("lsp-diag");
    let (mut client, ws) = start(&tmp);
    // Line 3: `"𝄞" AB ` is 8 UTF-16 units (the clef is two), then an unclosed quote.
    let text = "X:1\r\nT:Caf\u{e9}\r\nK:G\r\n\"\u{1d11e}\" AB \"Gm cd|\r\n";
    let path = ws.join("new.abc");
    let uri = file_uri(&path);
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "abc", "version": 7, "text": text}}),
    );
    let d = client.wait_notification(|m| {
        m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == json!(uri)
    });
    assert_eq!(d["params"]["version"], 7);
    let diags = d["params"]["diagnostics"].as_array().expect("diagnostics");
    let quote = diags
        .iter()
        .find(|d| {
            d["message"]
                .as_str()
                .is_some_and(|m| m.contains("unclosed quote"))
        })
        .unwrap_or_else(|| panic!("{d}"));
    assert_eq!(
        quote["range"]["start"],
        json!({"line": 3, "character": 8}),
        "{quote}"
    );
    assert_eq!(quote["range"]["end"]["line"], 3, "{quote}");
    assert_eq!(quote["range"]["end"]["character"], 15, "{quote}");
    assert_eq!(quote["severity"], 2);
    client.stop();
    // Logs went to stderr (debug level was on), never stdout (the client checks every byte).
    assert!(std::fs::read_to_string(tmp.path().join("stderr.log"))
        .expect("log")
        .contains("DEBUG"));
}

#[test]
fn unknown_methods_and_bad_params_get_json_rpc_errors() {
    let tmp = TempDir::new("lsp-errors");
    let (mut client, _) = start(&tmp);
    let r = client.request_raw("tunelens/nope", json!({}));
    assert_eq!(r["error"]["code"], -32601, "{r}");
    let r = client.request_raw("tunelens/similar", json!({"textDocument": 3}));
    assert_eq!(r["error"]["code"], -32602, "{r}");
    let r = client.request_raw(
        "tunelens/handshake",
        json!({"clientName": "t", "protocolVersion": 99}),
    );
    assert_eq!(r["error"]["code"], -32003, "{r}");
    let r = client.request(
        "tunelens/handshake",
        json!({"clientName": "t", "protocolVersion": 1}),
    );
    assert_eq!(r["protocolVersion"], 1);
    // Methods whose params are all optional answer a request with no params member, with
    // `null` and with `{}` alike.
    for method in ["tunelens/status", "tunelens/reindex"] {
        for r in [
            client.request_without_params(method),
            client.request_raw(method, Value::Null),
            client.request_raw(method, json!({})),
        ] {
            assert!(
                r.get("error").is_none() && r.get("result").is_some(),
                "{method}: {r}"
            );
        }
    }
    client.stop();
}

/// The reference corpus's tune; its bars 5-8 (line 7) are quoted below.
const REFERENCE: &str = "X:1\nT:The Reference Jig\nM:6/8\nL:1/8\nK:G\n|:GAB c2d|e2f g3|gfe dcB|AGF G3:|\n|:Bcd e2f|g2a b3|bag fed|edc B3:|\n";
/// A tune of the user's own, in C.
const MINE: &str = "X:1\nT:My Jig\nM:6/8\nL:1/8\nK:C\nCEC CEG|AGE D3|\nGEC DEF|EDC C3|\n";
/// Bars 5-8 of the reference a perfect 4th up (G to C), with two notes moved a step, typed in
/// as the new line 6 (0-based).
const QUOTE: &str = "efg a2b|c'2c' e'3|e'd'c' bag|age e3|\n";

/// The diagnostics published for `uri` at `version`.
fn diagnostics_of(client: &mut LspClient, uri: &str, version: i64) -> Vec<Value> {
    let d = client.wait_notification(|m| {
        m["method"] == "textDocument/publishDiagnostics"
            && m["params"]["uri"] == json!(uri)
            && m["params"]["version"] == json!(version)
    });
    d["params"]["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .clone()
}

#[test]
fn a_typed_quotation_gets_an_originality_diagnostic_and_a_broken_bar_a_syntax_one() {
    let tmp = TempDir::new("lsp-originality");
    let refs = tmp.path().join("refs");
    std::fs::create_dir(&refs).expect("mkdir");
    std::fs::write(refs.join("reference.abc"), REFERENCE).expect("write");
    let (mut client, ws) = start_with(&tmp, &["--corpus", refs.to_str().expect("path")]);
    let status = client.wait_indexed();
    assert!(
        status["corpora"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["name"] == "refs" && c["files"] == 1)),
        "{status}"
    );
    let uri = file_uri(&ws.join("mine.abc"));
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "abc", "version": 1, "text": MINE}}),
    );
    let first = diagnostics_of(&mut client, &uri, 1);
    assert!(first.is_empty(), "the user's own music: {first:?}");

    // Type the quotation in as a new line 6.
    client.notify(
        "textDocument/didChange",
        json!({
            "textDocument": {"uri": uri, "version": 2},
            "contentChanges": [{
                "range": {"start": {"line": 6, "character": 0}, "end": {"line": 6, "character": 0}},
                "text": QUOTE
            }]
        }),
    );
    let second = diagnostics_of(&mut client, &uri, 2);
    let found: Vec<&Value> = second
        .iter()
        .filter(|d| d["source"] == "tunelens/originality")
        .collect();
    assert_eq!(found.len(), 1, "{second:?}");
    let d = found[0];
    assert_eq!(d["severity"], 3, "Information: {d}");
    assert_eq!(d["code"], "close-to-reference", "{d}");
    assert_eq!(
        d["range"]["start"],
        json!({"line": 6, "character": 0}),
        "{d}"
    );
    assert_eq!(d["range"]["end"]["line"], 6, "the quoting bars only: {d}");
    let message = d["message"].as_str().expect("message");
    assert!(
        message.starts_with("bars 3–6 = bars 5–8 of The Reference Jig, up a perfect 4th, 2 of ")
            && message.contains("reference.abc:7 [refs/reference]"),
        "{message}"
    );

    // Hover on a bar of the quotation: the finding's explanation is there.
    let hover = client.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": uri}, "position": {"line": 6, "character": 10}}),
    );
    let h = hover_text(&hover);
    assert!(h.contains(&format!("**originality:** {message}")), "{h}");

    // Break bar 2 (one eighth too many) and leave a slur open: both at their place.
    client.notify(
        "textDocument/didChange",
        json!({
            "textDocument": {"uri": uri, "version": 3},
            "contentChanges": [
                {"range": {"start": {"line": 5, "character": 13}, "end": {"line": 5, "character": 14}},
                 "text": "4"},
                {"range": {"start": {"line": 7, "character": 4}, "end": {"line": 7, "character": 4}},
                 "text": "("}
            ]
        }),
    );
    let third = diagnostics_of(&mut client, &uri, 3);
    let by_code = |code: &str| {
        third
            .iter()
            .find(|d| d["code"] == code)
            .unwrap_or_else(|| panic!("no {code}: {third:?}"))
            .clone()
    };
    let bar = by_code("bar-duration");
    assert_eq!(
        bar["range"],
        json!({"start": {"line": 5, "character": 8}, "end": {"line": 5, "character": 15}}),
        "{bar}"
    );
    assert_eq!(bar["source"], "tunelens/abc");
    assert!(
        bar["message"]
            .as_str()
            .is_some_and(|m| m.contains("bar 2 is too long")),
        "{bar}"
    );
    let slur = by_code("unclosed-slur");
    assert_eq!(
        slur["range"],
        json!({"start": {"line": 7, "character": 4}, "end": {"line": 7, "character": 5}}),
        "{slur}"
    );
    // The quotation is still reported beside them.
    assert!(
        third.iter().any(|d| d["source"] == "tunelens/originality"),
        "{third:?}"
    );
    client.stop();
}

#[test]
fn originality_diagnostics_can_be_turned_off() {
    let tmp = TempDir::new("lsp-originality-off");
    let refs = tmp.path().join("refs");
    std::fs::create_dir(&refs).expect("mkdir");
    std::fs::write(refs.join("reference.abc"), REFERENCE).expect("write");
    let (mut client, ws) = start_with(&tmp, &["--corpus", refs.to_str().expect("path")]);
    client.wait_indexed();
    client.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"tunelens": {"originality": {"enabled": false}}}}),
    );
    let uri = file_uri(&ws.join("mine.abc"));
    let text = MINE.replace("GEC DEF", &format!("{}GEC DEF", QUOTE));
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "abc", "version": 1, "text": text}}),
    );
    let d = diagnostics_of(&mut client, &uri, 1);
    assert!(d.is_empty(), "{d:?}");
    client.stop();
}

/// A script on the socket and an editor on LSP make the same mistakes and read the same
/// errors: code, message and data alike.
#[test]
fn the_socket_and_the_lsp_answer_the_same_mistakes_with_the_same_errors() {
    let tmp = TempDir::new("lsp-socket-errors");
    let (mut lsp, ws) = start(&tmp);
    lsp.wait_indexed();
    let daemon = common::socket::Daemon::start(tmp.path(), &tmp.path().join("db-socket"), &ws, "e");
    daemon.wait_indexed();
    let mut socket = daemon.connect();
    let original = file_uri(&ws.join("original.abc"));
    let gone = file_uri(&ws.join("gone.abc"));
    let at =
        |uri: &str| json!({"textDocument": {"uri": uri}, "position": {"line": 6, "character": 2}});
    let mistakes: Vec<(&str, Option<Value>)> = vec![
        ("tunelens/nope", Some(json!({}))),
        ("tunelens/similar", Some(json!({"textDocument": 3}))),
        ("tunelens/similar", None),
        ("tunelens/compare", None),
        ("tunelens/similar", Some(at("http://example.org/a.abc"))),
        ("tunelens/similar", Some(at(&gone))),
        (
            "tunelens/classify",
            Some(json!({"textDocument": {"uri": original}, "labels": ["jig"]})),
        ),
        ("tunelens/search", Some(json!({"text": " "}))),
        (
            "tunelens/handshake",
            Some(json!({"clientName": "t", "protocolVersion": 99})),
        ),
    ];
    for (method, params) in mistakes {
        let (a, b) = match &params {
            Some(p) => (
                lsp.request_raw(method, p.clone()),
                socket.request_raw(method, p.clone()),
            ),
            None => (
                lsp.request_without_params(method),
                socket.request_without_params(method),
            ),
        };
        assert!(
            a.get("error").is_some(),
            "{method} {params:?}: LSP answered {a}"
        );
        assert_eq!(a["error"], b["error"], "{method} {params:?}");
    }
    daemon.kill();
    lsp.stop();
}

/// A client that can be asked to refresh its code lenses (VS Code can) gets, while typing,
/// the lens's last scores at once instead of waiting for the whole tune to be embedded; once
/// typing pauses the tune is embedded and the client is asked for the lenses again.
#[test]
fn while_typing_the_lens_keeps_its_scores_and_the_client_is_asked_to_refresh() {
    let tmp = TempDir::new("lsp-lens-refresh");
    let (mut client, ws) = start_client(
        &tmp,
        &shared_fixture("clamp-tiny-bert"),
        &[],
        json!({"workspace": {"codeLens": {"refreshSupport": true}}}),
    );
    client.wait_indexed();
    let uri = file_uri(&ws.join("original.abc"));
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "abc", "version": 1, "text": ORIGINAL}}),
    );
    let lens = |client: &mut LspClient| -> String {
        let lenses = client.request(
            "textDocument/codeLens",
            json!({"textDocument": {"uri": uri}}),
        );
        lenses[0]["command"]["title"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    // The opened text was indexed from disk: its tune vector is there.
    let before = lens(&mut client);
    assert!(
        before.starts_with("rhythm: ") && before.contains(" · "),
        "{before}"
    );

    // An edit that changes the tune: the lens answers at once with the last scores.
    client.notify(
        "textDocument/didChange",
        json!({
            "textDocument": {"uri": uri, "version": 2},
            "contentChanges": [{"range": {"start": {"line": 5, "character": 3},
                                          "end": {"line": 5, "character": 6}},
                                "text": "ded"}]
        }),
    );
    assert_eq!(
        lens(&mut client),
        before,
        "the last scores, not 'indexing…'"
    );

    // Typing pauses: the tune is embedded and the client asked to refresh.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !client
        .server_requests
        .iter()
        .any(|m| m == "workspace/codeLens/refresh")
    {
        assert!(std::time::Instant::now() < deadline, "no codeLens/refresh");
        client.request("tunelens/status", json!({}));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let after = lens(&mut client);
    assert!(
        after.starts_with("rhythm: ") && after.contains(" · "),
        "{after}"
    );
    client.stop();
}
