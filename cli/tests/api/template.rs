//! `template.yaml` read once, with a YAML parser (SAM's `!Ref` tags included),
//! for the route and event tests: its functions must be [`planx::FUNCTIONS`],
//! and its HttpApi events are the gateway's routes.

use std::collections::BTreeSet;

use planx::Function;
use serde_yaml_ng::Value;

/// One HttpApi event of the template.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Route {
    pub method: String,
    /// As the gateway writes it: `/user/{key}`.
    pub path: String,
    /// The function's logical id, `UserFunction`.
    pub function: String,
    pub event: String,
}

impl Route {
    /// The route key as API Gateway writes it: `DELETE /user/{key}`.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// The logical id of a function in the template: `user` is `UserFunction`.
pub(crate) fn logical_id(function: &Function) -> String {
    let name = function.name;
    format!("{}{}Function", name[..1].to_uppercase(), &name[1..])
}

fn text<'a>(value: &'a Value, what: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what} should be a string, got {value:?}"))
}

/// `!Ref Name` (or `{Ref: Name}`) as `Name`.
fn reference(value: &Value) -> Option<&str> {
    match value {
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str(),
        Value::Mapping(m) if m.len() == 1 => m.get("Ref").and_then(Value::as_str),
        _ => None,
    }
}

pub(crate) fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    let source = std::fs::read_to_string(path).expect("template.yaml is readable");
    serde_yaml_ng::from_str(&source).expect("template.yaml is YAML (SAM tags included)")
}

/// Every HttpApi event of every function, checked for the API, the payload
/// format, and the binary its function is built from; the template's
/// functions are exactly [`planx::FUNCTIONS`].
pub(crate) fn routes(template: &Value) -> Vec<Route> {
    let resources = template["Resources"]
        .as_mapping()
        .expect("the template has Resources");
    let mut routes = vec![];
    let mut functions = BTreeSet::new();
    for (id, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let id = text(id, "a logical id");
        let function = planx::FUNCTIONS
            .iter()
            .find(|f| logical_id(f) == id)
            .unwrap_or_else(|| panic!("{id} is not one of planx::FUNCTIONS"));
        assert_eq!(
            resource["Metadata"]["BuildProperties"]["Binary"].as_str(),
            Some(function.name),
            "{id} is built from the binary {}",
            function.name
        );
        functions.insert(id.to_string());
        let events = resource["Properties"]["Events"]
            .as_mapping()
            .unwrap_or_else(|| panic!("{id} has Events"));
        for (event, spec) in events {
            let event = text(event, "an event name");
            if spec["Type"].as_str() != Some("HttpApi") {
                continue;
            }
            let props = &spec["Properties"];
            assert_eq!(
                reference(&props["ApiId"]),
                Some("HttpApi"),
                "{id}.{event} is on the stack's HttpApi"
            );
            assert_eq!(
                props["PayloadFormatVersion"].as_str(),
                Some("2.0"),
                "{id}.{event} uses payload format 2.0"
            );
            routes.push(Route {
                method: text(&props["Method"], "Method").to_ascii_uppercase(),
                path: text(&props["Path"], "Path").to_string(),
                function: id.to_string(),
                event: event.to_string(),
            });
        }
    }
    let expected: BTreeSet<String> = planx::FUNCTIONS.iter().map(logical_id).collect();
    assert_eq!(functions, expected, "the template has every function");
    routes
}
