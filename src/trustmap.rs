//! "Who can approve this, and how does trust flow?" — the trust a revision establishes
//! (root → groups → members, delegations → groups, roles, revocations) as one plain value, and
//! its renderings: a table for a person, Graphviz DOT and Mermaid for a picture
//! (`treaty trust show`). docs/model.md embeds this repository's Mermaid text; a test keeps the
//! two equal.
//!
//! Every rendering is deterministic (groups and members in the root's order, delegations in
//! first-match order) and escapes what came from the repository: names are restricted by the
//! model, but labels are escaped for their format anyway.

use serde::Serialize;

use crate::trust::Trust;

/// One group and its members.
#[derive(Debug, Clone, Serialize)]
pub struct GroupInfo {
    pub name: String,
    pub threshold: usize,
    pub group_id: String,
    pub members: Vec<MemberInfo>,
    /// Roles this group fills (release, snapshot, verdict, log).
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemberInfo {
    pub id: String,
    /// Ed25519 + ML-DSA-65: both signatures are needed for the member to count.
    pub hybrid: bool,
    /// Key ids of this member that the root revokes, with the reason.
    pub revoked: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DelegationInfo {
    pub name: String,
    pub paths: Vec<String>,
    /// Every one of these groups must reach its threshold.
    pub groups: Vec<String>,
}

/// The whole map.
#[derive(Debug, Clone, Serialize)]
pub struct Map {
    pub root_version: u64,
    pub root_expires: String,
    /// How trust was anchored (`repository`, `pinned`, `pinned-group`).
    pub anchor: String,
    pub chain_ok: bool,
    /// The root group first, then the pinned groups in name order.
    pub groups: Vec<GroupInfo>,
    /// First match wins.
    pub delegations: Vec<DelegationInfo>,
    /// Revoked key ids with reason and time.
    pub revoked: Vec<(String, String, String)>,
    /// Groups the root pins that did not load, with why.
    pub broken_groups: Vec<(String, String)>,
}

/// Who approves one path.
#[derive(Debug, Clone, Serialize)]
pub struct WhoApproves {
    pub path: String,
    /// The delegation that decides (first match), or `root pin` / `root chain` for trust files.
    pub governed_by: Option<String>,
    pub groups: Vec<GroupInfo>,
}

impl Map {
    pub fn of(t: &Trust) -> Map {
        let revoked_reason = |kid: &str| {
            t.revoked
                .get(kid)
                .map(|r| format!("{kid} ({})", reason(r.reason)))
        };
        let group = |g: &crate::governance::model::Group| GroupInfo {
            name: g.name.clone(),
            threshold: g.threshold,
            group_id: g.group_id.clone(),
            members: g
                .members
                .iter()
                .map(|m| MemberInfo {
                    id: m.id.clone(),
                    hybrid: m.ml_dsa_65.is_some(),
                    revoked: m
                        .keys_with_ids()
                        .filter_map(|(_, id)| revoked_reason(id))
                        .collect(),
                })
                .collect(),
            roles: t
                .root
                .roles
                .iter()
                .filter(|(_, grp)| **grp == g.name)
                .map(|(r, _)| r.clone())
                .collect(),
        };
        let mut groups = vec![group(&t.root_group)];
        groups.extend(
            t.groups
                .values()
                .filter(|g| g.name != t.root_group.name)
                .map(group),
        );
        let mut revoked: Vec<(String, String, String)> = t
            .revoked
            .values()
            .map(|r| (r.keyid.clone(), reason(r.reason).to_owned(), r.time.clone()))
            .collect();
        revoked.sort();
        Map {
            root_version: t.root.version,
            root_expires: t.root.expires.clone(),
            anchor: t.anchor_kind.to_owned(),
            chain_ok: t.chain_ok,
            groups,
            delegations: t
                .root
                .delegations
                .iter()
                .map(|d| DelegationInfo {
                    name: d.name.clone(),
                    paths: d.paths.clone(),
                    groups: d.groups.clone(),
                })
                .collect(),
            revoked,
            broken_groups: t
                .broken_groups
                .iter()
                .map(|(a, b)| (a.clone(), b.clone()))
                .collect(),
        }
    }

    /// Who approves `path` under this trust.
    pub fn who_approves(&self, t: &Trust, path: &str) -> WhoApproves {
        let by_name = |n: &str| self.groups.iter().find(|g| g.name == n).cloned();
        if crate::path::RepoPath::new(path).is_ok_and(|p| crate::trust::is_trust_file(&p)) {
            return WhoApproves {
                path: path.to_owned(),
                governed_by: Some("root chain".into()),
                groups: by_name(&t.root_group.name).into_iter().collect(),
            };
        }
        match t.delegation_for(path) {
            Some(d) => WhoApproves {
                path: path.to_owned(),
                governed_by: Some(d.name.clone()),
                groups: d.groups.iter().filter_map(|g| by_name(g)).collect(),
            },
            None => WhoApproves {
                path: path.to_owned(),
                governed_by: None,
                groups: vec![],
            },
        }
    }

    /// Mermaid `flowchart` text (GitHub renders it in Markdown).
    pub fn mermaid(&self) -> String {
        let mut o = String::from("flowchart LR\n");
        o.push_str(&format!(
            "  root{{{{\"{}\"}}}}\n",
            mm(&format!(
                "root v{} · expires {}",
                self.root_version, self.root_expires
            ))
        ));
        for g in &self.groups {
            let gid = node("g", &g.name);
            let roles = if g.roles.is_empty() {
                String::new()
            } else {
                format!(" · roles: {}", g.roles.join(", "))
            };
            o.push_str(&format!(
                "  {gid}[\"{}\"]\n",
                mm(&format!(
                    "group {} · {} of {}{roles}",
                    g.name,
                    g.threshold,
                    g.members.len()
                ))
            ));
            o.push_str(&format!("  root -->|pins| {gid}\n"));
            for m in &g.members {
                let mid = node("m", &format!("{}.{}", g.name, m.id));
                let label = format!(
                    "{}{}{}",
                    m.id,
                    if m.hybrid { " (hybrid)" } else { "" },
                    if m.revoked.is_empty() { "" } else { " REVOKED" }
                );
                o.push_str(&format!("  {mid}([\"{}\"])\n", mm(&label)));
                o.push_str(&format!("  {gid} --- {mid}\n"));
            }
        }
        for (i, d) in self.delegations.iter().enumerate() {
            let did = node("d", &d.name);
            o.push_str(&format!(
                "  {did}[/\"{}\"/]\n",
                mm(&format!("{}. {}: {}", i + 1, d.name, d.paths.join(" ")))
            ));
            for g in &d.groups {
                o.push_str(&format!("  {} -->|approves| {did}\n", node("g", g)));
            }
        }
        o
    }

    /// Graphviz DOT text.
    pub fn dot(&self) -> String {
        let mut o =
            String::from("digraph trust {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n");
        o.push_str(&format!(
            "  root [shape=doubleoctagon, label=\"{}\"];\n",
            dq(&format!(
                "root v{}\\nexpires {}",
                self.root_version, self.root_expires
            ))
        ));
        for g in &self.groups {
            let gid = node("g", &g.name);
            o.push_str(&format!(
                "  {gid} [shape=box, label=\"{}\"];\n  root -> {gid} [label=\"pins\"];\n",
                dq(&format!(
                    "group {}\\n{} of {}",
                    g.name,
                    g.threshold,
                    g.members.len()
                ))
            ));
            for m in &g.members {
                let mid = node("m", &format!("{}.{}", g.name, m.id));
                o.push_str(&format!(
                    "  {mid} [shape=ellipse, label=\"{}\"{}];\n  {gid} -> {mid} [arrowhead=none];\n",
                    dq(&m.id),
                    if m.revoked.is_empty() { "" } else { ", color=red" }
                ));
            }
        }
        for (i, d) in self.delegations.iter().enumerate() {
            let did = node("d", &d.name);
            o.push_str(&format!(
                "  {did} [shape=note, label=\"{}\"];\n",
                dq(&format!("{}. {}\\n{}", i + 1, d.name, d.paths.join(" ")))
            ));
            for g in &d.groups {
                o.push_str(&format!(
                    "  {} -> {did} [label=\"approves\"];\n",
                    node("g", g)
                ));
            }
        }
        o.push_str("}\n");
        o
    }
}

fn reason(r: crate::governance::model::RevocationReason) -> &'static str {
    match r {
        crate::governance::model::RevocationReason::Compromised => "compromised",
        crate::governance::model::RevocationReason::Retired => "retired",
    }
}

/// A node id safe in both DOT and Mermaid: a prefix, then the name with everything outside
/// `[A-Za-z0-9]` as `_XX` hex (so two names never share an id).
fn node(prefix: &str, name: &str) -> String {
    let mut o = format!("{prefix}_");
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() {
            o.push(b as char);
        } else {
            o.push_str(&format!("_{b:02x}"));
        }
    }
    o
}

/// A Mermaid quoted label: quotes and angle brackets as entity codes, control characters
/// dropped.
fn mm(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .map(|c| match c {
            '"' => "#quot;".to_owned(),
            '<' => "#lt;".to_owned(),
            '>' => "#gt;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// A DOT quoted label: `"` and `\` escaped (except our own `\n` line breaks), control
/// characters dropped.
fn dq(s: &str) -> String {
    s.replace("\\n", "\u{0}")
        .chars()
        .filter(|c| *c == '\u{0}' || !c.is_control())
        .map(|c| match c {
            '"' => "\\\"".to_owned(),
            '\\' => "\\\\".to_owned(),
            '\u{0}' => "\\n".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_injective_and_safe() {
        assert_eq!(node("g", "council"), "g_council");
        assert_ne!(node("g", "a-b"), node("g", "a_b"));
        assert!(node("m", "x\"]; evil")
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    }

    #[test]
    fn labels_cannot_break_out_of_their_quotes() {
        assert_eq!(mm("a\"b<c>\n"), "a#quot;b#lt;c#gt;");
        assert_eq!(dq("a\"b\\c\\nd\u{7}"), "a\\\"b\\\\c\\nd");
    }
}
