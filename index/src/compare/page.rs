//! The compare page as one self-contained HTML file: abcjs, the renderer and the data are
//! pasted into the template (`assets/compare/`), so it opens from disk with no network.

use super::ComparePage;

const TEMPLATE: &str = include_str!("../../../assets/compare/template.html");
const ABCJS: &str = include_str!("../../../assets/compare/vendor/abcjs-basic-min.js");
const RENDERER: &str = include_str!("../../../assets/compare/compare.js");

/// The abcjs version pasted in (`assets/compare/vendor/README.md`).
pub const ABCJS_VERSION: &str = "6.7.2";

/// The page for `page`.
pub fn html(page: &ComparePage) -> String {
    // `<` escaped, so no string in the data (a title, a path) can close the script element.
    let data = serde_json::to_string(page)
        .unwrap_or_else(|_| "null".to_owned())
        .replace('<', "\\u003c");
    fill(
        TEMPLATE,
        &[
            ("/*TUNELENS_ABCJS*/", ABCJS),
            ("/*TUNELENS_COMPARE_JS*/", RENDERER),
            ("/*TUNELENS_DATA*/", &data),
        ],
    )
}

/// `template` with each placeholder replaced once, in one pass over the template only: a
/// placeholder's text inside pasted content (someone's ABC) is never replaced again.
fn fill(template: &str, parts: &[(&str, &str)]) -> String {
    let mut out =
        String::with_capacity(template.len() + parts.iter().map(|p| p.1.len()).sum::<usize>());
    let mut rest = template;
    loop {
        let next = parts
            .iter()
            .filter_map(|&(mark, text)| rest.find(mark).map(|at| (at, mark, text)))
            .min_by_key(|&(at, ..)| at);
        let Some((at, mark, text)) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..at]);
        out.push_str(text);
        rest = &rest[at + mark.len()..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{ComparePassage, Role};

    #[test]
    fn the_page_holds_everything_and_no_placeholder_or_early_script_end() {
        let page = ComparePage {
            title: "Passages like </script><b>".into(),
            passages: vec![ComparePassage {
                role: Role::Query,
                label: "x".into(),
                summary: None,
                interval: None,
                location: String::new(),
                uri: None,
                line: 1,
                link: None,
                score: None,
                abc: "X:1\nT:/*TUNELENS_DATA*/\nK:C\nCDEF|\n".into(),
                differ: vec![],
            }],
        };
        let html = html(&page);
        for mark in ["/*TUNELENS_ABCJS*/", "/*TUNELENS_COMPARE_JS*/"] {
            assert!(!html.contains(mark), "{mark} left in the page");
        }
        // The only placeholder text left is the one inside the user's ABC, as data.
        assert_eq!(html.matches("/*TUNELENS_DATA*/").count(), 1);
        assert!(!html.contains("</script><b>"));
        assert!(html.contains("abcjs"));
        assert!(html.contains("\\u003c/script>\\u003cb>"));
    }
}
