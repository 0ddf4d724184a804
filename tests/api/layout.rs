//! The layout's own rules (ADR 0008), checked on the sources: no import cycle between the
//! modules of any crate, and the write side independent of the read-side crate.
//!
//! Each crate's module tree is followed from its root file through its `mod` declarations
//! (test modules left out), and every path a module names (`use` trees, and `crate::`,
//! `super::`, `self::` or child-module paths in its code) becomes an edge to the module that
//! holds the item, following re-exports (`pub use`) to the module that defines the item and
//! names bound by `use` to what they stand for.
//!
//! What fails: a cycle between modules none of which contains all the others (siblings,
//! cousins, or a detour through another subtree), and any cycle that is left once the edges
//! from a module to its own ancestors are set aside. What passes: a parent and its children
//! using one another's items and nothing outside (a `mod.rs` that holds the error type its
//! children return and calls them), the ownership Rust's `use super::*` expresses.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

type Module = Vec<String>;

/// One crate's modules: the file each is in, the edges each has, and its child modules.
#[derive(Default)]
struct Graph {
    files: BTreeMap<Module, PathBuf>,
    edges: BTreeMap<Module, BTreeSet<Module>>,
    /// What each module re-exports (`pub use`): the name, and the path it stands for.
    reexports: BTreeMap<Module, BTreeMap<String, Vec<String>>>,
    /// Every name a module's `use` items bind (private ones too), and the path it stands for.
    imports: BTreeMap<Module, BTreeMap<String, Vec<String>>>,
}

fn is_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.meta.require_list().is_ok_and(|l| {
                l.tokens
                    .to_string()
                    .split(|c: char| !c.is_alphanumeric() && c != '_')
                    .any(|t| t == "test")
            })
    })
}

/// Collects the module tree from `file`, the file of module `module` (`dir`: where its child
/// module files are).
fn load(
    graph: &mut Graph,
    module: Module,
    file: &Path,
    dir: &Path,
    bodies: &mut Vec<(Module, Vec<syn::Item>)>,
) {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let parsed = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    graph.files.insert(module.clone(), file.to_owned());
    module_items(graph, module, parsed.items, dir, bodies);
}

fn module_items(
    graph: &mut Graph,
    module: Module,
    items: Vec<syn::Item>,
    dir: &Path,
    bodies: &mut Vec<(Module, Vec<syn::Item>)>,
) {
    let mut kept = Vec::new();
    for item in items {
        match item {
            syn::Item::Mod(m) if is_test(&m.attrs) => {}
            syn::Item::Mod(m) => {
                let name = m.ident.to_string();
                let mut child = module.clone();
                child.push(name.clone());
                match m.content {
                    Some((_, inner)) => {
                        graph
                            .files
                            .insert(child.clone(), graph.files[&module].clone());
                        module_items(graph, child, inner, &dir.join(&name), bodies);
                    }
                    None => {
                        let flat = dir.join(format!("{name}.rs"));
                        let (file, child_dir) = if flat.exists() {
                            (flat, dir.join(&name))
                        } else {
                            (dir.join(&name).join("mod.rs"), dir.join(&name))
                        };
                        load(graph, child, &file, &child_dir, bodies);
                    }
                }
            }
            other if item_is_test(&other) => {}
            other => kept.push(other),
        }
    }
    bodies.push((module, kept));
}

fn item_is_test(item: &syn::Item) -> bool {
    match item {
        syn::Item::Fn(f) => is_test(&f.attrs),
        syn::Item::Impl(i) => is_test(&i.attrs),
        syn::Item::Use(u) => is_test(&u.attrs),
        syn::Item::Const(c) => is_test(&c.attrs),
        syn::Item::Struct(s) => is_test(&s.attrs),
        _ => false,
    }
}

/// The paths a module names.
struct Paths(Vec<Vec<String>>);

impl<'a> Visit<'a> for Paths {
    fn visit_item_use(&mut self, u: &'a syn::ItemUse) {
        self.0
            .extend(use_paths(&u.tree).into_iter().map(|(_, path)| path));
    }

    fn visit_path(&mut self, p: &'a syn::Path) {
        if p.segments.len() > 1 {
            self.0
                .push(p.segments.iter().map(|s| s.ident.to_string()).collect());
        }
        syn::visit::visit_path(self, p);
    }

    fn visit_macro(&mut self, m: &'a syn::Macro) {
        // Paths inside macro calls (`format!`, the route table, ...) are tokens, not syntax:
        // pick out the `crate::a::b` and `super::a` runs.
        fn flatten(tokens: proc_macro2::TokenStream, out: &mut Vec<String>) {
            for token in tokens {
                match token {
                    proc_macro2::TokenTree::Group(g) => {
                        out.push(String::new());
                        flatten(g.stream(), out);
                        out.push(String::new());
                    }
                    other => out.push(other.to_string()),
                }
            }
        }
        let mut tokens = Vec::new();
        flatten(m.tokens.clone(), &mut tokens);
        let mut i = 0;
        while i < tokens.len() {
            if tokens[i] != "crate" && tokens[i] != "super" {
                i += 1;
                continue;
            }
            let mut path = vec![tokens[i].clone()];
            i += 1;
            while tokens.get(i).is_some_and(|t| t == ":")
                && tokens.get(i + 1).is_some_and(|t| t == ":")
            {
                match tokens.get(i + 2) {
                    Some(t)
                        if !t.is_empty() && t.chars().all(|c| c.is_alphanumeric() || c == '_') =>
                    {
                        path.push(t.clone())
                    }
                    _ => break,
                }
                i += 3;
            }
            self.0.push(path);
        }
        syn::visit::visit_macro(self, m);
    }
}

/// The module a path from `module` lands in, if it is one of this crate's. A name a module
/// re-exports (`pub use`) is followed to the module that defines it, so a facade's users
/// depend on what it re-exports, not on the facade.
fn resolve(graph: &Graph, module: &Module, path: &[String]) -> Option<Module> {
    resolve_within(graph, module, path, 8)
}

fn resolve_within(graph: &Graph, module: &Module, path: &[String], depth: u8) -> Option<Module> {
    let mut base: Module;
    let mut rest = path;
    match path.first().map(String::as_str) {
        Some("crate") => {
            base = Vec::new();
            rest = &path[1..];
        }
        Some("self") => {
            base = module.clone();
            rest = &path[1..];
        }
        Some("super") => {
            base = module.clone();
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        Some(first) => {
            // A path relative to this module: a child module, a name it re-exports, or a
            // name one of its `use` items binds (`use super::api;` then `api::users::get`).
            let mut child = module.clone();
            child.push(first.to_owned());
            if !graph.files.contains_key(&child) && !reexports(graph, module, first) {
                let bound = graph.imports.get(module).and_then(|i| i.get(first));
                let bound = bound.filter(|b| b.first() != Some(&path[0]) && depth > 0)?;
                let mut followed = bound.clone();
                followed.extend(path[1..].iter().cloned());
                return resolve_within(graph, module, &followed, depth - 1);
            }
            base = module.clone();
        }
        None => return None,
    }
    let mut target = base;
    for (i, segment) in rest.iter().enumerate() {
        let mut next = target.clone();
        next.push(segment.clone());
        if graph.files.contains_key(&next) {
            target = next;
            continue;
        }
        if let Some(original) = graph.reexports.get(&target).and_then(|r| r.get(segment)) {
            if depth == 0 {
                return Some(target);
            }
            let mut followed = original.clone();
            followed.extend(rest[i + 1..].iter().cloned());
            // A re-export of another crate's item is no edge within this one.
            return resolve_within(graph, &target, &followed, depth - 1);
        }
        break;
    }
    Some(target)
}

fn reexports(graph: &Graph, module: &Module, name: &str) -> bool {
    graph
        .reexports
        .get(module)
        .is_some_and(|r| r.contains_key(name))
}

/// What a `use` tree brings in: each name it binds (`None` for a glob) and the path that
/// name stands for (`use a::{self as b}` binds `b` to `a`).
fn use_paths(tree: &syn::UseTree) -> Vec<(Option<String>, Vec<String>)> {
    fn walk(
        tree: &syn::UseTree,
        mut prefix: Vec<String>,
        out: &mut Vec<(Option<String>, Vec<String>)>,
    ) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                walk(&p.tree, prefix, out);
            }
            syn::UseTree::Name(n) if n.ident == "self" => {
                out.push((prefix.last().cloned(), prefix));
            }
            syn::UseTree::Name(n) => {
                prefix.push(n.ident.to_string());
                out.push((Some(n.ident.to_string()), prefix));
            }
            syn::UseTree::Rename(r) => {
                if r.ident != "self" {
                    prefix.push(r.ident.to_string());
                }
                out.push((Some(r.rename.to_string()), prefix));
            }
            syn::UseTree::Glob(_) => out.push((None, prefix)),
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    walk(t, prefix.clone(), out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(tree, Vec::new(), &mut out);
    out
}

/// The names a module's `use` items bind (only the `pub` ones with `public`) and the paths
/// they stand for.
fn bindings_of(items: &[syn::Item], public: bool) -> BTreeMap<String, Vec<String>> {
    items
        .iter()
        .filter_map(|item| match item {
            syn::Item::Use(u) if !public || !matches!(u.vis, syn::Visibility::Inherited) => {
                Some(use_paths(&u.tree))
            }
            _ => None,
        })
        .flatten()
        .filter_map(|(name, path)| Some((name?, path)))
        .collect()
}

fn graph_of(root: &Path) -> Graph {
    let mut graph = Graph::default();
    let mut bodies = Vec::new();
    load(
        &mut graph,
        Vec::new(),
        root,
        root.parent().unwrap(),
        &mut bodies,
    );
    for (module, items) in &bodies {
        graph
            .reexports
            .insert(module.clone(), bindings_of(items, true));
        graph
            .imports
            .insert(module.clone(), bindings_of(items, false));
    }
    for (module, items) in bodies {
        let mut paths = Paths(Vec::new());
        for item in &items {
            paths.visit_item(item);
        }
        let targets: BTreeSet<Module> = paths
            .0
            .iter()
            .filter_map(|p| resolve(&graph, &module, p))
            .filter(|t| *t != module)
            .collect();
        graph.edges.entry(module).or_default().extend(targets);
    }
    graph
}

/// The strongly connected components of more than one module (Tarjan).
fn cycles(graph: &Graph) -> Vec<Vec<Module>> {
    struct State<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g Module, usize>,
        low: BTreeMap<&'g Module, usize>,
        stack: Vec<&'g Module>,
        on: BTreeSet<&'g Module>,
        found: Vec<Vec<Module>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g Module) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on.insert(v);
        for w in s.graph.edges.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.files.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.found
}

fn name(m: &Module) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

/// The cycles the layout forbids (see the module documentation).
fn forbidden_cycles(graph: &Graph) -> Vec<Vec<Module>> {
    let mut found: Vec<Vec<Module>> = cycles(graph)
        .into_iter()
        .filter(|c| !c.iter().any(|root| c.iter().all(|m| m.starts_with(root))))
        .collect();
    let mut without_ancestors = Graph {
        files: graph.files.clone(),
        ..Graph::default()
    };
    for (module, targets) in &graph.edges {
        let kept = targets
            .iter()
            .filter(|t| !module.starts_with(t))
            .cloned()
            .collect();
        without_ancestors.edges.insert(module.clone(), kept);
    }
    for component in cycles(&without_ancestors) {
        let mut sorted = component.clone();
        sorted.sort();
        if !found.iter().any(|f| {
            let mut g = f.clone();
            g.sort();
            g == sorted
        }) {
            found.push(component);
        }
    }
    found
}

fn describe(graph: &Graph, component: &[Module]) -> String {
    let members: BTreeSet<&Module> = component.iter().collect();
    let mut out = String::new();
    for a in &members {
        for b in graph.edges[*a].iter().filter(|b| members.contains(b)) {
            out.push_str(&format!("\n    {} -> {}", name(a), name(b)));
        }
    }
    out
}

/// The crates of the workspace, by root file.
const ROOTS: &[&str] = &[
    "src/lib.rs",
    "src/main.rs",
    "events/src/lib.rs",
    "projections/src/lib.rs",
    "log/src/lib.rs",
    "ops/seed/src/lib.rs",
    "ops/loadgen/src/main.rs",
];

#[test]
fn no_crate_has_an_import_cycle_between_its_modules() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut failures = Vec::new();
    for root in ROOTS {
        let graph = graph_of(&repo.join(root));
        assert!(
            graph.files.len() > 1 || root.ends_with("main.rs"),
            "{root}: no modules found"
        );
        for component in forbidden_cycles(&graph) {
            failures.push(format!("{root}: a cycle{}", describe(&graph, &component)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The write side (the event store and the command executor) reads the log through
/// `charter-log`, never through the read-side crate.
#[test]
fn the_write_side_does_not_import_the_read_side() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    fn scan(dir: &Path, seen: &mut usize) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                scan(&path, seen);
            } else if path.extension().is_some_and(|e| e == "rs") {
                *seen += 1;
                let text = std::fs::read_to_string(&path).unwrap();
                assert!(
                    !text.contains("charter_projections"),
                    "{} imports charter_projections",
                    path.display()
                );
            }
        }
    }
    let mut seen = 0;
    for dir in ["src/store", "src/command", "src/domain"] {
        scan(&repo.join(dir), &mut seen);
    }
    assert!(seen > 20, "only {seen} files read");
}

/// The checker itself: a planted chain passes; a planted cycle between siblings, one through
/// a detour into a parent's child, and one through a macro call fail; a parent and its child
/// using each other pass.
#[test]
fn the_cycle_check_finds_a_planted_cycle() {
    let found = |files: &[(&str, &str)]| {
        let dir = std::env::temp_dir().join(format!(
            "charter-layout-{}-{}",
            std::process::id(),
            files.len() + files[0].1.len()
        ));
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let graph = graph_of(&dir.join("lib.rs"));
        std::fs::remove_dir_all(&dir).unwrap();
        (forbidden_cycles(&graph).len(), graph)
    };
    // A chain, a -> b -> a::inner -> c; the test module's use of b does not count.
    let (cycles, graph) = found(&[
        (
            "lib.rs",
            "mod a;\nmod b;\nmod c;\n#[cfg(test)]\nmod tests { use crate::b::X; }\n",
        ),
        ("a.rs", "mod inner;\nfn f() { crate::b::g(); }\n"),
        (
            "a/inner.rs",
            "fn h() { format!(\"{}\", super::super::c::Y); }\n",
        ),
        ("b.rs", "use crate::a::inner;\npub fn g() {}\n"),
        ("c.rs", "pub const Y: u8 = 0;\n"),
    ]);
    assert_eq!(cycles, 0);
    let inner = vec!["a".to_owned(), "inner".to_owned()];
    assert!(
        graph.edges[&inner].contains(&vec!["c".to_owned()]),
        "a macro's path is an edge"
    );
    // Siblings, through a macro call and a `use` group.
    let (cycles, _) = found(&[
        ("lib.rs", "mod a;\nmod b;\n"),
        ("a.rs", "pub fn f() { format!(\"{}\", crate::b::G); }\n"),
        ("b.rs", "use super::a::{f};\npub const G: u8 = 0;\n"),
    ]);
    assert_eq!(cycles, 1, "the a <-> b cycle is found");
    // A detour: a uses b, b uses a::x, a::x uses a's own item.
    let (cycles, _) = found(&[
        ("lib.rs", "mod a;\nmod b;\n"),
        (
            "a.rs",
            "pub mod x;\npub struct E;\nfn f() { crate::b::g(); }\n",
        ),
        ("a/x.rs", "pub fn h() -> super::E { super::E }\n"),
        ("b.rs", "use crate::a;\npub fn g() { a::x::h(); }\n"),
    ]);
    assert!(cycles >= 1, "a -> b -> a::x -> a is found");
    // A parent holding its children's error type, and calling them: allowed.
    let (cycles, _) = found(&[
        ("lib.rs", "mod p;\n"),
        (
            "p/mod.rs",
            "mod c;\npub struct PError;\nfn run() { c::go(); }\n",
        ),
        (
            "p/c.rs",
            "use super::PError;\npub fn go() -> Option<PError> { None }\n",
        ),
    ]);
    assert_eq!(cycles, 0, "a parent and its child may use each other");
}
