//! Unit tests for the template engine: Go `text/template` semantics over Flux's data.

use super::*;

fn data() -> TemplateData {
    let mut d = TemplateData {
        automation: AutomationObject {
            namespace: "flux-system".into(),
            name: "podinfo".into(),
        },
        ..Default::default()
    };
    d.values.insert("cluster".into(), "prod".into());
    d.values.insert("env".into(), "eu".into());
    d.changed.add_change(
        "deploy.yaml",
        ObjectId {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "test".into(),
            namespace: String::new(),
        },
        [Change {
            old_value: "old".into(),
            new_value: "new".into(),
            setter: "ns:p".into(),
        }],
    );
    d
}

fn render(t: &str) -> String {
    render_commit_message(t, &data()).unwrap_or_else(|e| panic!("{t:?}: {e}"))
}

fn render_err(t: &str) -> TemplateError {
    match render_commit_message(t, &data()) {
        Ok(s) => panic!("{t:?} rendered {s:?}, expected an error"),
        Err(e) => e,
    }
}

#[test]
fn default_and_plain_text() {
    assert_eq!(render(""), DEFAULT_COMMIT_MESSAGE);
    assert_eq!(render("no actions\n"), "no actions\n");
    assert_eq!(render("{{ .AutomationObject }}"), "flux-system/podinfo");
    assert_eq!(
        render("{{ .AutomationObject.Name }} {{ .AutomationObject.String }}"),
        "podinfo flux-system/podinfo"
    );
}

#[test]
fn trim_markers() {
    assert_eq!(render("a  \n\t{{- \"b\" -}}  \n c"), "abc");
    assert_eq!(render("a {{- 3 }} b"), "a3 b");
    assert_eq!(render("a {{ 3 -}} b"), "a 3b");
    // `{{-3}}` is the number -3, not a trim marker.
    assert_eq!(render("a {{-3}} b"), "a -3 b");
    assert_eq!(render("x\n{{- /* comment */ -}}\ny"), "xy");
    assert_eq!(render("x{{/* c */}}y"), "xy");
    assert_eq!(
        render("{{ range $i, $e := list 1 2 3 }}\n  {{- $e }}{{ end }}"),
        "123"
    );
}

#[test]
fn range_over_maps_sorted() {
    let t = "{{ range $k, $v := dict \"b\" 2 \"a\" 1 \"c\" 3 }}{{ $k }}={{ $v }};{{ end }}";
    assert_eq!(render(t), "a=1;b=2;c=3;");
    assert_eq!(
        render("{{ range $k, $v := .Values }}{{ $k }}:{{ $v }} {{ end }}"),
        "cluster:prod env:eu "
    );
    assert_eq!(render("{{ range .Values }}{{ . }},{{ end }}"), "prod,eu,");
    assert_eq!(
        render("{{ range $v := .Values }}{{ $v }}{{ end }}"),
        "prodeu"
    );
    assert_eq!(render("{{ range list }}x{{ else }}empty{{ end }}"), "empty");
    assert_eq!(
        render("{{ range $i, $e := list \"a\" \"b\" }}{{ $i }}{{ $e }}{{ end }}"),
        "0a1b"
    );
    assert_eq!(render("{{ range 3 }}{{ . }}{{ end }}"), "012");
    assert_eq!(
        render(
            "{{ range list 1 2 3 4 }}{{ if eq . 2 }}{{ continue }}{{ end }}{{ if eq . 4 }}{{ break }}{{ end }}{{ . }}{{ end }}"
        ),
        "13"
    );
}

#[test]
fn objects_sorted_like_go_struct_keys() {
    let mut d = data();
    let id = |kind: &str, name: &str| ObjectId {
        api_version: "v1".into(),
        kind: kind.into(),
        name: name.into(),
        namespace: "default".into(),
    };
    let ch = |v: &str| Change {
        old_value: "a".into(),
        new_value: v.into(),
        setter: "s".into(),
    };
    d.changed
        .add_change("b.yaml", id("Service", "z"), [ch("1")]);
    d.changed
        .add_change("b.yaml", id("ConfigMap", "y"), [ch("2")]);
    d.changed
        .add_change("a.yaml", id("ConfigMap", "y"), [ch("3"), ch("2")]);
    let t = "{{ range $o, $c := .Changed.Objects }}{{ $o.Kind }}/{{ $o.Name }}:{{ range $c }}{{ .NewValue }}{{ end }} {{ end }}|{{ range .Changed.Changes }}{{ .NewValue }}{{ end }}";
    assert_eq!(
        render_commit_message(t, &d).unwrap(),
        "Deployment/test:new ConfigMap/y:322 Service/z:1 |321new"
    );
}

#[test]
fn go_value_formatting() {
    assert_eq!(
        render("{{ .Changed.FileChanges }}"),
        "map[deploy.yaml:map[{{{apps/v1 Deployment} {test }}}:[{old new ns:p}]]]"
    );
    assert_eq!(
        render("{{ toString .Changed }}"),
        "{map[deploy.yaml:map[{{{apps/v1 Deployment} {test }}}:[{old new ns:p}]]]}"
    );
    assert_eq!(render("{{ .Changed.Changes }}"), "[{old new ns:p}]");
    assert_eq!(render("{{ .Values }}"), "map[cluster:prod env:eu]");
    assert_eq!(
        render("{{ printf \"%+v\" (index .Changed.Changes 0) }}"),
        "{OldValue:old NewValue:new Setter:ns:p}"
    );
    assert_eq!(
        render("{{ . }}"),
        "{flux-system/podinfo {map[deploy.yaml:map[{{{apps/v1 Deployment} {test }}}:[{old new ns:p}]]]} map[cluster:prod env:eu]}"
    );
    assert_eq!(
        render("{{ list 1 \"a\" nil true 1.5 }}"),
        "[1 a <nil> true 1.5]"
    );
    // Gerrit Change-Id recipe: stable across runs.
    let gerrit = "{{ printf \"I%s\" (sha1sum (printf \"%s%s%s\" .AutomationObject (toString .Changed) (toString .Values))) }}";
    let once = render(gerrit);
    assert_eq!(once.len(), 41);
    assert_eq!(once, render(gerrit));
}

#[test]
fn printf_verbs() {
    assert_eq!(
        render("{{ printf \"%s=%d %q %x %v\" \"a\" 42 \"q\" \"hi\" .AutomationObject }}"),
        "a=42 \"q\" 6869 flux-system/podinfo"
    );
    assert_eq!(
        render("{{ printf \"%05.1f|%-3s|%t\" 3.14159 \"x\" true }}"),
        "003.1|x  |true"
    );
    assert_eq!(render("{{ printf \"%d\" \"str\" }}"), "%!d(string=str)");
    assert_eq!(render("{{ printf \"%s\" .Values.missing }}"), "%!s(<nil>)");
    assert_eq!(
        render("{{ print 1 2 \"a\" 3 }}|{{ println \"x\" 1 }}"),
        "1 2a3|x 1\n"
    );
    assert_eq!(render("{{ \"a\" | printf \"%s-%s\" \"b\" }}"), "b-a");
}

#[test]
fn missing_keys() {
    assert_eq!(render("[{{ .Values.missing }}]"), "[<no value>]");
    assert_eq!(render("[{{ index .Values \"missing\" }}]"), "[]");
    assert_eq!(render("[{{ .Values.missing.deeper }}]"), "[<no value>]");
    assert_eq!(
        render("{{ if .Values.missing }}yes{{ else }}no{{ end }}"),
        "no"
    );
    assert_eq!(render("{{ default \"dflt\" .Values.missing }}"), "dflt");
    assert_eq!(render("{{ eq .Values.missing \"x\" }}"), "false");
    assert_eq!(render("[{{ index (dict \"a\" 1) \"b\" }}]"), "[<no value>]");
    assert_eq!(
        render(
            "{{ with .Values.cluster }}c={{ . }}{{ end }}{{ with .Values.nope }}x{{ else }}none{{ end }}"
        ),
        "c=prodnone"
    );
    let e = render_err("{{ .Values.missing | lower }}");
    assert!(
        e.to_string().contains("invalid value; expected string"),
        "{e}"
    );
}

#[test]
fn variables_and_scoping() {
    assert_eq!(render("{{ $x := \"a\" }}{{ $x = \"b\" }}{{ $x }}"), "b");
    assert_eq!(
        render("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ $y := 3 }}{{ end }}{{ $x }}"),
        "2"
    );
    assert_eq!(
        render("{{ with .AutomationObject }}{{ .Name }}/{{ $.Values.cluster }}{{ end }}"),
        "podinfo/prod"
    );
    assert!(
        matches!(render_err("{{ if true }}{{ $y := 3 }}{{ end }}{{ $y }}"), TemplateError::Parse(m) if m.contains("undefined variable \"$y\""))
    );
}

#[test]
fn control_flow_and_builtins() {
    assert_eq!(
        render(
            "{{ if eq .Values.cluster \"dev\" }}d{{ else if eq .Values.cluster \"prod\" }}p{{ else }}o{{ end }}"
        ),
        "p"
    );
    assert_eq!(
        render(
            "{{ and 1 0 2 }} {{ or 0 \"\" \"x\" }} {{ not 0 }} {{ len .Values }} {{ len \"héllo\" }}"
        ),
        "0 x true 2 6"
    );
    assert_eq!(
        render("{{ lt 1 2 }} {{ ge \"b\" \"a\" }} {{ ne 1 2 }} {{ eq 1 2 3 1 }}"),
        "true true true true"
    );
    assert_eq!(
        render(
            "{{ slice \"abcdef\" 1 3 }} {{ index (list 1 2 3) 1 }} {{ html \"<a&b>\" }} {{ urlquery \"a b&c\" }} {{ js \"it's\" }}"
        ),
        "bc 2 &lt;a&amp;b&gt; a+b%26c it\\'s"
    );
    // `and` short-circuits: the failing call is never evaluated.
    assert_eq!(render("{{ and false (fail \"boom\") }}"), "false");
    assert!(
        render_err("{{ eq 1 \"a\" }}")
            .to_string()
            .contains("incompatible types for comparison")
    );
}

#[test]
fn define_template_block() {
    assert_eq!(
        render(
            "{{ define \"x\" }}[{{ . }}]{{ end }}{{ template \"x\" .Values.cluster }}{{ template \"x\" }}"
        ),
        "[prod][<no value>]"
    );
    assert_eq!(
        render("{{ block \"b\" .AutomationObject.Name }}<{{ . }}>{{ end }}"),
        "<podinfo>"
    );
}

#[test]
fn sprig_functions() {
    let cases = [
        ("{{ \"Hello World\" | lower }}", "hello world"),
        (
            "{{ upper \"abc\" }} {{ title \"hello world\" }}",
            "ABC Hello World",
        ),
        (
            "{{ trim \"  x  \" }}|{{ trimPrefix \"v\" \"v1.2\" }}|{{ trimSuffix \"-rc\" \"1.0-rc\" }}",
            "x|1.2|1.0",
        ),
        (
            "{{ replace \"-\" \"_\" \"a-b-c\" }} {{ contains \"b\" \"abc\" }} {{ hasPrefix \"a\" \"abc\" }} {{ hasSuffix \"c\" \"abc\" }}",
            "a_b_c true true true",
        ),
        (
            "{{ join \",\" (list \"a\" \"b\") }} {{ splitList \":\" \"a:b\" }} {{ (split \":\" \"x:y\")._1 }}",
            "a,b [a b] y",
        ),
        (
            "{{ list \"b\" \"a\" \"b\" | uniq | sortAlpha }} {{ first (list 1 2) }} {{ last (list 1 2) }}",
            "[a b] 1 2",
        ),
        (
            "{{ keys (dict \"b\" 1 \"a\" 2) }} {{ values (dict \"b\" 1 \"a\" 2) }}",
            "[a b] [2 1]",
        ),
        (
            "{{ default \"d\" \"\" }} {{ default \"d\" \"v\" }} {{ empty \"\" }} {{ empty (list 1) }}",
            "d v true false",
        ),
        (
            "{{ quote \"a\" }} {{ squote \"b\" }} {{ \"abcdef\" | trunc 3 }} {{ trunc -2 \"abcdef\" }}",
            "\"a\" 'b' abc ef",
        ),
        (
            "{{ sha256sum \"abc\" | trunc 12 }} {{ sha1sum \"abc\" | trunc 8 }} {{ b64enc \"hi\" }}",
            "ba7816bf8f01 a9993e36 aGk=",
        ),
        (
            "{{ nospace \" a b \" }}|{{ indent 2 \"a\\nb\" }}|{{ nindent 1 \"x\" }}|{{ repeat 3 \"ab\" }}|{{ substr 1 3 \"abcd\" }}",
            "ab|  a\n  b|\n x|ababab|bc",
        ),
        (
            "{{ toJson (dict \"a\" (list 1 \"<\")) }} {{ toJson (index .Changed.Changes 0) }}",
            "{\"a\":[1,\"\\u003c\"]} {\"OldValue\":\"old\",\"NewValue\":\"new\",\"Setter\":\"ns:p\"}",
        ),
        (
            "{{ range $o, $_ := .Changed.Objects }}{{ toJson $o }}{{ end }}",
            "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"name\":\"test\"}",
        ),
        (
            "{{ add 1 2 3 }} {{ sub 5 2 }} {{ mul 2 3 }} {{ div 7 2 }} {{ mod 7 2 }} {{ max 1 5 2 }} {{ add1 \"41\" }}",
            "6 3 6 3 1 5 42",
        ),
        (
            "{{ regexReplaceAll \"v(\\\\d+)\" \"v12\" \"n$1\" }} {{ regexMatch \"^a\" \"abc\" }}",
            "n12 true",
        ),
        (
            "{{ typeOf .Values }} {{ kindOf .Changed }} {{ typeOf .Changed.Changes }}",
            "map[string]string struct []update.Change",
        ),
        (
            "{{ ternary \"y\" \"n\" true }} {{ coalesce \"\" \"x\" }} {{ cat \"a\" 1 nil \"b\" }}",
            "y x a 1 b",
        ),
    ];
    for (t, want) in cases {
        assert_eq!(render(t), want, "{t}");
    }
    // sprig's dict functions take map[string]interface{}; `.Values` is map[string]string in Flux.
    assert!(
        render_err("{{ keys .Values }}").to_string().contains(
            "wrong type for value; expected map[string]interface {}; got map[string]string"
        )
    );
}

#[test]
fn unknown_function_is_parse_error() {
    let e = render_err("line one\n{{ now | date \"2006\" }}");
    assert_eq!(
        e,
        TemplateError::Parse("template: commit message:2: function \"now\" not defined".into())
    );
    assert_eq!(
        e.to_string(),
        "unable to create commit message template from spec: template: commit message:2: function \"now\" not defined"
    );
    assert!(
        matches!(render_err("{{ env \"HOME\" }}"), TemplateError::Parse(m) if m.contains("function \"env\" not defined"))
    );
}

#[test]
fn parse_errors() {
    let p = |t: &str| match render_err(t) {
        TemplateError::Parse(m) => m,
        other => panic!("{t}: expected parse error, got {other}"),
    };
    assert_eq!(
        p("{{ .Values.x "),
        "template: commit message:1: unclosed action"
    );
    assert_eq!(
        p("{{ if true }}x"),
        "template: commit message:1: unexpected EOF"
    );
    assert_eq!(
        p("a\n{{ end }}"),
        "template: commit message:2: unexpected {{end}}"
    );
    assert_eq!(
        p("{{ \"abc }}"),
        "template: commit message:1: unterminated quoted string"
    );
    assert_eq!(
        p("{{ break }}"),
        "template: commit message:1: {{break}} outside {{range}}"
    );
    assert_eq!(
        p("{{/* x }}"),
        "template: commit message:1: unclosed comment"
    );
    assert_eq!(
        p("{{ }}"),
        "template: commit message:1: missing value for command"
    );
    let deep = format!("{{{{ {}1{} }}}}", "(".repeat(5000), ")".repeat(5000));
    assert!(p(&deep).ends_with("max expression depth exceeded"));
    let deep_ifs = format!(
        "{}x{}",
        "{{ if true }}".repeat(5000),
        "{{ end }}".repeat(5000)
    );
    assert!(p(&deep_ifs).ends_with("max expression depth exceeded"));
}

#[test]
fn exec_errors_name_line_and_column() {
    let e = render_err("Title\n\n  {{ .Changed.Nope }}");
    assert_eq!(
        e.to_string(),
        "failed to run template from spec: template: commit message:3:5: executing \"commit message\" at <.Changed.Nope>: can't evaluate field Nope in type update.Result"
    );
    // Errors inside a defined template name it, with the position inside the whole text.
    let e = render_err(
        "{{ define \"inner\" }}\n  x {{ index .Missing 1 }}{{ end }}{{ template \"inner\" .AutomationObject }}",
    );
    assert_eq!(
        e.to_string(),
        "failed to run template from spec: template: commit message:2:13: executing \"inner\" at <.Missing>: can't evaluate field Missing in type types.NamespacedName"
    );
    let e = render_err("{{ index .Changed.Changes 5 }}");
    assert!(
        e.to_string()
            .ends_with("at <index .Changed.Changes 5>: error calling index: index out of range: 5"),
        "{e}"
    );
    let e = render_err("{{ fail \"stop here\" }}");
    assert!(
        e.to_string().ends_with("error calling fail: stop here"),
        "{e}"
    );
}

#[test]
fn removed_fields() {
    assert_eq!(
        render_err("{{ range .Updated.Images }}{{ end }}"),
        TemplateError::RemovedField(".Updated".into())
    );
    assert_eq!(
        render_err("{{ .Changed.ImageResult.Files }}"),
        TemplateError::RemovedField(".Changed.ImageResult".into())
    );
}

#[test]
fn push_summaries() {
    assert_eq!(
        push_summary("main@sha1:0123456789abcdef", "main", &[], "").unwrap(),
        "pushed commit '0123456' to branch 'main'"
    );
    assert_eq!(
        push_summary("", "main", &[], "m"),
        Err(TemplateError::EmptyRevision)
    );
}

#[test]
fn change_result_helpers() {
    let mut r = ChangeResult::default();
    assert!(r.is_empty());
    let id = ObjectId::default();
    let c = Change {
        old_value: "a".into(),
        new_value: "b".into(),
        setter: "s".into(),
    };
    r.add_change("x.yaml", id.clone(), [c.clone()]);
    r.add_change("y.yaml", id.clone(), [c.clone()]);
    assert_eq!(r.changes(), vec![c.clone()]);
    assert_eq!(r.objects().get(&id).map(Vec::len), Some(2));
}

/// Attacker path: a commit template (written by whoever can edit the automation) cannot read
/// files or the environment, run commands or reach the network. Sprig's functions that would
/// (`env`, `expandenv`, `getHostByName`, …) and Helm's (`include`, `tpl`, …) are not defined;
/// `call` has nothing to call (the data holds no functions); `template` only reaches templates
/// defined inline.
#[test]
fn templates_cannot_reach_files_commands_or_the_network() {
    for f in [
        "env",
        "expandenv",
        "getHostByName",
        "readFile",
        "include",
        "tpl",
        "exec",
        "shell",
        "osBase",
        "lookup",
        "now",
        "randAlphaNum",
        "uuidv4",
        "genPrivateKey",
    ] {
        assert!(!SUPPORTED_FUNCTIONS.contains(&f), "{f} is supported");
        let e = render_err(&format!("{{{{ {f} \"/etc/passwd\" }}}}"));
        assert!(
            matches!(&e, TemplateError::Parse(m) if m.contains(&format!("function \"{f}\" not defined"))),
            "{f}: {e}"
        );
    }
    for t in [
        "{{ call .Values.env }}",
        "{{ call \"/bin/sh\" \"-c\" \"id\" }}",
    ] {
        assert!(matches!(render_err(t), TemplateError::Exec(_)), "{t}");
    }
    let e = render_err("{{ template \"/etc/passwd\" }}");
    assert!(e.to_string().contains("\"/etc/passwd\" not defined"), "{e}");
}

/// Found by the `template` fuzz target: a huge printf width allocated gigabytes. Go's fmt
/// refuses widths and precisions beyond 1e6 (`%!(NOVERB)` for literal digits, `%!(BADWIDTH)`
/// / `%!(BADPREC)` for `*` arguments); so does Ferry.
#[test]
fn printf_widths_are_bounded_like_go() {
    assert_eq!(
        render("{{ printf \"%0000007132263159873900008q|\" \"x\" }}"),
        "%!(NOVERB)%!(EXTRA string=x)"
    );
    assert_eq!(
        render("{{ printf \"%.99999999999f\" 1.5 }}"),
        "%!(NOVERB)%!(EXTRA float64=1.5)"
    );
    assert_eq!(render("{{ printf \"%*d\" 2000000 7 }}"), "%!(BADWIDTH)7");
    assert_eq!(render("{{ printf \"%.*d\" 2000000 7 }}"), "%!(BADPREC)7");
    assert_eq!(render("{{ printf \"%5d|%-4s|\" 7 \"ab\" }}"), "    7|ab  |");
    // Found next: precisions Go accepts but Rust's formatter does not (over 65535 digits).
    let f = render("{{ printf \"%.4444444f\" 3.14159 }}");
    assert_eq!(f.len(), 2 + 4_444_444);
    assert!(f.starts_with("3.14158999999999988261834005243144929409027099609375000"));
    assert!(f.ends_with("0000"));
    let e = render("{{ printf \"%.70000e\" 3.14159 }}");
    assert!(
        e.starts_with("3.1415899999999998826") && e.ends_with("00e+00"),
        "{}",
        &e[..30]
    );
    assert_eq!(e.len(), 2 + 70_000 + 4);
    assert_eq!(render("{{ printf \"%.70000g\" 0.5 }}"), "0.5");
    // And an integer precision of 400003 digits was padded one insert at a time (quadratic).
    let i = render("{{ printf \"%.400003v|%.3d\" (list 2 2) 7 }}");
    assert_eq!(i.len(), 2 * 400_003 + 7);
    assert!(i.starts_with("[000") && i.ends_with("2]|007"));
}

/// Found by the `template` fuzz target: `until 56e8` allocated 134 GB. Like `repeat`, `until`
/// is bounded (a deliberate difference from sprig, docs/flux-compatibility.md).
#[test]
fn until_is_bounded() {
    assert_eq!(render("{{ until 3 }}"), "[0 1 2]");
    assert_eq!(render("{{ len (until 1048576) }}"), "1048576");
    for t in ["{{ until 56e8 }}", "{{ until -2000000 }}"] {
        let e = render_err(t);
        assert!(
            matches!(&e, TemplateError::Exec(m) if m.contains("more than 1048576")),
            "{t}: {e}"
        );
    }
}
