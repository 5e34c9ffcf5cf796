//! Just enough XML to read IAM's Query answers: the direct child elements of a fragment,
//! by name, nesting of the same name included (an instance profile's `member` holds its
//! roles' and tags' `member`s).

/// The inner text of each direct child element `tag` of `fragment` (the content of some
/// element, or a whole document), in order; `<tag/>` gives `""`.
pub(super) fn children<'a>(fragment: &'a str, tag: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut open_at: Option<usize> = None;
    let mut rest = 0usize;
    while let Some(lt) = fragment[rest..].find('<').map(|i| i + rest) {
        let Some(gt) = fragment[lt..].find('>').map(|i| i + lt) else {
            break;
        };
        let inner = &fragment[lt + 1..gt];
        rest = gt + 1;
        if inner.starts_with('?') || inner.starts_with('!') {
            continue;
        }
        if let Some(name) = inner.strip_prefix('/') {
            depth = depth.saturating_sub(1);
            if depth == 0 && name.trim() == tag {
                if let Some(start) = open_at.take() {
                    out.push(&fragment[start..lt]);
                }
            }
            continue;
        }
        let self_closing = inner.ends_with('/');
        let name = inner
            .trim_end_matches('/')
            .split_whitespace()
            .next()
            .unwrap_or_default();
        if depth == 0 && name == tag {
            if self_closing {
                out.push("");
            } else {
                open_at = Some(gt + 1);
            }
        }
        if !self_closing {
            depth += 1;
        }
    }
    out
}

/// The text of the first direct child `tag`, entities decoded.
pub(super) fn text(fragment: &str, tag: &str) -> Option<String> {
    children(fragment, tag).first().map(|t| unescape(t))
}

/// The element at the end of a path of first children (`["A", "B"]`: the first `B` in the
/// first `A`).
pub(super) fn path<'a>(fragment: &'a str, tags: &[&str]) -> Option<&'a str> {
    tags.iter()
        .try_fold(fragment, |f, tag| children(f, tag).first().copied())
}

/// The error code of an error answer (`<Error><Code>`), if it is one.
pub(super) fn error_code(body: &str) -> Option<String> {
    path(body, &["ErrorResponse", "Error"]).and_then(|e| text(e, "Code"))
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = r#"<?xml version="1.0"?><R xmlns="x"><P><member><Path>/k/</Path><N>a</N><Roles><member><Path>/</Path><RoleName>r</RoleName></member></Roles><Tags><member><Key>k&amp;1</Key><Value>v</Value></member></Tags></member><member><Path>/</Path><N>b</N><Roles/><Tags/></member></P></R>"#;

    #[test]
    fn nested_members_of_the_same_name() {
        let members = path(LIST, &["R", "P"]).map(|p| children(p, "member"));
        let members = members.unwrap_or_default();
        assert_eq!(members.len(), 2);
        assert_eq!(text(members[0], "Path").as_deref(), Some("/k/"));
        assert_eq!(text(members[1], "N").as_deref(), Some("b"));
        let roles = path(members[0], &["Roles"]).map(|r| children(r, "member"));
        assert_eq!(roles.map(|r| r.len()), Some(1));
        let tags = path(members[0], &["Tags"]).map(|t| children(t, "member"));
        let tag = tags.unwrap_or_default();
        assert_eq!(text(tag[0], "Key").as_deref(), Some("k&1"));
        assert_eq!(path(members[1], &["Roles"]), Some(""));
    }

    #[test]
    fn error_codes() {
        let body = "<ErrorResponse><Error><Type>Sender</Type><Code>NoSuchEntity</Code></Error></ErrorResponse>";
        assert_eq!(error_code(body).as_deref(), Some("NoSuchEntity"));
        assert_eq!(error_code(LIST), None);
    }
}
