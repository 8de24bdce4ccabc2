//! Checks PromQL expressions against what services expose on `/metrics`:
//! every metric an expression selects must be exposed, every label it
//! matches on, groups by (`by`, `without`, `on`, `ignoring`, `group_left`)
//! or needs (`le` for `histogram_quantile`) must be on the series it
//! applies to, and every `label="value"` matcher must match a value that
//! was exposed. A small tokenizer and a precedence-climbing parser of the
//! PromQL subset dashboards use, tracking which labels each
//! sub-expression's result carries.
//!
//! Grafana's variables are allowed where values go: `$var` and `${var}`
//! in strings (not checked as values) and `[$__rate_interval]` as ranges.

use std::collections::{BTreeMap, BTreeSet};

/// Labels Prometheus attaches to every scraped series from its target
/// (static configs, Kubernetes service discovery and the Prometheus
/// Operator's ServiceMonitor), so no exposition carries them.
pub(crate) const TARGET_LABELS: [&str; 7] = [
    "job",
    "instance",
    "namespace",
    "pod",
    "service",
    "container",
    "endpoint",
];

/// Aggregation operators, which take `by`/`without`; those in the second
/// list take a parameter before the vector.
const AGGREGATIONS: [&str; 8] = [
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
];
const PARAMETER_AGGREGATIONS: [&str; 6] = [
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "limitk",
    "limit_ratio",
];

/// Functions whose result keeps the labels of their (first) vector argument.
const LABEL_KEEPING_FUNCTIONS: [&str; 35] = [
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "deriv",
    "predict_linear",
    "resets",
    "changes",
    "abs",
    "ceil",
    "floor",
    "round",
    "clamp",
    "clamp_min",
    "clamp_max",
    "exp",
    "ln",
    "log2",
    "log10",
    "sqrt",
    "sgn",
    "timestamp",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "quantile_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "last_over_time",
    "present_over_time",
    "absent_over_time",
    "sort",
];

// === exposition ===

/// The series names and labels (with their values) of one or more
/// `/metrics` scrapes in the Prometheus or OpenMetrics text format.
#[derive(Debug, Default)]
pub(crate) struct Exposition {
    /// Sample name (`…_total`, `…_bucket`, …) → label → values seen.
    series: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
}

// === impl Exposition ===

impl Exposition {
    /// Adds one scrape. Families declared by `# TYPE` but without samples
    /// yet count as exposed, with no labels known (`le` for buckets).
    pub(crate) fn add(&mut self, text: &str) -> anyhow::Result<()> {
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(declaration) = line.strip_prefix("# TYPE ") {
                let mut words = declaration.split_whitespace();
                let (Some(family), Some(kind)) = (words.next(), words.next()) else {
                    anyhow::bail!("bad TYPE line {line:?}");
                };
                let suffixes: &[&str] = match kind {
                    "counter" => &["_total"],
                    "histogram" | "gaugehistogram" => &["_bucket", "_sum", "_count"],
                    "summary" => &["", "_sum", "_count"],
                    _ => &[""],
                };
                for suffix in suffixes {
                    let labels = self.series.entry(format!("{family}{suffix}")).or_default();
                    if *suffix == "_bucket" {
                        labels.entry("le".to_owned()).or_default();
                    }
                }
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (name, labels) = parse_sample(line)?;
            let known = self.series.entry(name).or_default();
            for (label, value) in labels {
                known.entry(label).or_default().insert(value);
            }
        }
        Ok(())
    }

    /// The labels (with values) of the series named `name`, if exposed.
    fn labels(&self, name: &str) -> Option<&BTreeMap<String, BTreeSet<String>>> {
        self.series.get(name)
    }
}

/// The name and labels of one sample line (`name{a="b",c="d"} 1`).
fn parse_sample(line: &str) -> anyhow::Result<(String, Vec<(String, String)>)> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or_else(|| anyhow::anyhow!("sample without a value: {line:?}"))?;
    let name = line[..name_end].to_owned();
    let mut labels = Vec::new();
    let rest = &line[name_end..];
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.chars().peekable();
        loop {
            let label: String = chars
                .by_ref()
                .take_while(|c| *c != '=')
                .collect::<String>()
                .trim()
                .trim_start_matches(',')
                .trim()
                .to_owned();
            if label.starts_with('}') || label.is_empty() {
                break;
            }
            anyhow::ensure!(chars.next() == Some('"'), "bad label in {line:?}");
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some(other) => value.push(other),
                        None => anyhow::bail!("unterminated label value in {line:?}"),
                    },
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => anyhow::bail!("unterminated label value in {line:?}"),
                }
            }
            labels.push((label, value));
            match chars.peek() {
                Some(',') => {
                    chars.next();
                    if chars.peek() == Some(&'}') {
                        break;
                    }
                }
                Some('}') => break,
                _ => anyhow::bail!("bad label list in {line:?}"),
            }
        }
    }
    Ok((name, labels))
}

// === tokens ===

/// One PromQL token.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// A metric name, function, keyword or label name.
    Ident(String),
    /// A quoted string, unescaped.
    Str(String),
    /// A number literal.
    Number,
    /// The inside of `[…]`: a range or subquery (not checked).
    Range,
    /// A Grafana variable outside a string (`$var`).
    Variable,
    /// Punctuation or an operator.
    Op(&'static str),
}

/// Operators and punctuation, longest first so `=~` wins over `=`.
const OPERATORS: [&str; 21] = [
    "==", "!=", "=~", "!~", "<=", ">=", "=", "<", ">", "+", "-", "*", "/", "%", "^", "(", ")", "{",
    "}", ",", "@",
];

fn tokenize(expr: &str) -> Result<Vec<Token>, String> {
    let bytes = expr.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i] as char;
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' {
            // A comment runs to the end of the line.
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b':')
            {
                i += 1;
            }
            tokens.push(Token::Ident(expr[start..i].to_owned()));
        } else if c.is_ascii_digit()
            || (c == '.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                i += 1;
            }
            tokens.push(Token::Number);
        } else if c == '"' || c == '\'' || c == '`' {
            let quote = bytes[i];
            i += 1;
            let mut value = String::new();
            loop {
                let Some(&b) = bytes.get(i) else {
                    return Err(format!("unterminated string in {expr:?}"));
                };
                i += 1;
                if b == quote {
                    break;
                }
                if b == b'\\' && quote != b'`' {
                    let Some(&escaped) = bytes.get(i) else {
                        return Err(format!("unterminated string in {expr:?}"));
                    };
                    i += 1;
                    value.push(escaped as char);
                } else {
                    value.push(b as char);
                }
            }
            tokens.push(Token::Str(value));
        } else if c == '[' {
            let close = expr[i..]
                .find(']')
                .ok_or_else(|| format!("unclosed [ in {expr:?}"))?;
            i += close + 1;
            tokens.push(Token::Range);
        } else if c == '$' {
            i += 1;
            if bytes.get(i) == Some(&b'{') {
                let close = expr[i..]
                    .find('}')
                    .ok_or_else(|| format!("unclosed ${{ in {expr:?}"))?;
                i += close + 1;
            } else {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
            }
            tokens.push(Token::Variable);
        } else {
            let op = OPERATORS
                .iter()
                .find(|op| expr[i..].starts_with(**op))
                .ok_or_else(|| format!("unexpected {c:?} in {expr:?}"))?;
            i += op.len();
            tokens.push(Token::Op(op));
        }
    }
    Ok(tokens)
}

// === parser ===

/// What an expression evaluates to, as far as labels go.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    /// A number (or string): no labels.
    Scalar,
    /// An instant or range vector whose series carry these labels.
    Vector(BTreeSet<String>),
}

/// The parser of one expression; problems are collected, not returned at
/// the first, so one run lists every mistake.
struct Parser<'a> {
    tokens: Vec<Token>,
    at: usize,
    exposition: &'a Exposition,
    problems: Vec<String>,
}

/// Checks `expr`; the problems found, empty when it is sound.
pub(crate) fn check(expr: &str, exposition: &Exposition) -> Vec<String> {
    let tokens = match tokenize(expr) {
        Ok(tokens) => tokens,
        Err(problem) => return vec![problem],
    };
    let mut parser = Parser {
        tokens,
        at: 0,
        exposition,
        problems: Vec::new(),
    };
    match parser.expression(0) {
        Ok(_) if parser.at == parser.tokens.len() => {}
        Ok(_) => parser.problems.push(format!(
            "unexpected {:?} in {expr:?}",
            parser.tokens[parser.at]
        )),
        Err(problem) => parser.problems.push(format!("{problem} in {expr:?}")),
    }
    parser.problems
}

/// The binding power of a binary operator (higher binds tighter).
fn precedence(token: &Token) -> Option<u8> {
    match token {
        Token::Ident(word) => match word.as_str() {
            "or" => Some(1),
            "and" | "unless" => Some(2),
            "atan2" => Some(5),
            _ => None,
        },
        Token::Op(op) => match *op {
            "==" | "!=" | "<=" | ">=" | "<" | ">" => Some(3),
            "+" | "-" => Some(4),
            "*" | "/" | "%" => Some(5),
            "^" => Some(6),
            _ => None,
        },
        _ => None,
    }
}

// === impl Parser ===

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Result<Token, String> {
        let token = self
            .tokens
            .get(self.at)
            .cloned()
            .ok_or_else(|| "unexpected end".to_owned())?;
        self.at += 1;
        Ok(token)
    }

    fn expect(&mut self, op: &'static str) -> Result<(), String> {
        match self.next()? {
            Token::Op(found) if found == op => Ok(()),
            other => Err(format!("expected {op:?}, found {other:?}")),
        }
    }

    fn peek_ident(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Ident(found)) if found == word)
    }

    /// A binary expression whose operators bind at least `min` tightly.
    fn expression(&mut self, min: u8) -> Result<Value, String> {
        let mut left = self.unary()?;
        while let Some(power) = self.peek().and_then(precedence) {
            if power < min {
                break;
            }
            let operator = self.next()?;
            if self.peek_ident("bool") {
                self.at += 1;
            }
            let mut matching: Option<(bool, BTreeSet<String>)> = None;
            if self.peek_ident("on") || self.peek_ident("ignoring") {
                let on = self.peek_ident("on");
                self.at += 1;
                matching = Some((on, self.label_list()?));
            }
            let mut included = BTreeSet::new();
            if self.peek_ident("group_left") || self.peek_ident("group_right") {
                self.at += 1;
                if self.peek() == Some(&Token::Op("(")) {
                    included = self.label_list()?;
                }
            }
            // `^` is right-associative, every other operator left.
            let next_min = if operator == Token::Op("^") {
                power
            } else {
                power + 1
            };
            let right = self.expression(next_min)?;
            left = self.combine(&operator, left, right, matching, included);
        }
        Ok(left)
    }

    /// The labels of `left <operator> right`, checking the matching labels.
    fn combine(
        &mut self,
        operator: &Token,
        left: Value,
        right: Value,
        matching: Option<(bool, BTreeSet<String>)>,
        included: BTreeSet<String>,
    ) -> Value {
        let (left, right) = match (left, right) {
            (Value::Scalar, Value::Scalar) => return Value::Scalar,
            (Value::Vector(labels), Value::Scalar) | (Value::Scalar, Value::Vector(labels)) => {
                return Value::Vector(labels);
            }
            (Value::Vector(left), Value::Vector(right)) => (left, right),
        };
        if let Some((_, labels)) = &matching {
            for label in labels {
                if !left.contains(label) || !right.contains(label) {
                    self.problems.push(format!(
                        "matching label {label:?} is not on both sides of {operator:?}"
                    ));
                }
            }
        }
        for label in &included {
            if !right.contains(label) && !left.contains(label) {
                self.problems
                    .push(format!("group label {label:?} is on neither side"));
            }
        }
        let mut result = left;
        if *operator == Token::Ident("or".to_owned()) {
            result.extend(right);
            return Value::Vector(result);
        }
        match matching {
            Some((true, on)) if included.is_empty() => {
                result.retain(|label| on.contains(label));
            }
            Some((false, ignoring)) if included.is_empty() => {
                result.retain(|label| !ignoring.contains(label));
            }
            _ => {}
        }
        result.extend(included);
        Value::Vector(result)
    }

    /// A unary expression: a sign, then a primary expression with its
    /// optional range, `offset` and `@` modifiers.
    fn unary(&mut self) -> Result<Value, String> {
        if matches!(self.peek(), Some(Token::Op("-" | "+"))) {
            self.at += 1;
            // Unary minus binds looser than `^` only.
            return self.expression(6);
        }
        let value = self.primary()?;
        loop {
            match self.peek() {
                Some(Token::Range) => self.at += 1,
                Some(Token::Ident(word)) if word == "offset" => {
                    self.at += 1;
                    if matches!(self.peek(), Some(Token::Op("-"))) {
                        self.at += 1;
                    }
                    self.next()?;
                }
                Some(Token::Op("@")) => {
                    self.at += 1;
                    self.next()?;
                }
                _ => return Ok(value),
            }
        }
    }

    fn primary(&mut self) -> Result<Value, String> {
        match self.next()? {
            Token::Number | Token::Str(_) | Token::Variable => Ok(Value::Scalar),
            Token::Op("(") => {
                let value = self.expression(0)?;
                self.expect(")")?;
                Ok(value)
            }
            Token::Op("{") => {
                let matchers = self.matchers()?;
                let name = matchers
                    .iter()
                    .find(|(label, op, _)| label == "__name__" && *op == "=")
                    .map(|(_, _, value)| value.clone())
                    .ok_or_else(|| "a selector without a metric name".to_owned())?;
                Ok(self.selector(&name, &matchers))
            }
            Token::Ident(word) => {
                let aggregation = AGGREGATIONS.contains(&word.as_str())
                    || PARAMETER_AGGREGATIONS.contains(&word.as_str());
                if aggregation
                    && (self.peek_ident("by")
                        || self.peek_ident("without")
                        || self.peek() == Some(&Token::Op("(")))
                {
                    return self.aggregation(&word);
                }
                if self.peek() == Some(&Token::Op("(")) {
                    return self.function(&word);
                }
                let matchers = if self.peek() == Some(&Token::Op("{")) {
                    self.at += 1;
                    self.matchers()?
                } else {
                    Vec::new()
                };
                Ok(self.selector(&word, &matchers))
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }

    /// `(label, label, …)`.
    fn label_list(&mut self) -> Result<BTreeSet<String>, String> {
        self.expect("(")?;
        let mut labels = BTreeSet::new();
        loop {
            match self.next()? {
                Token::Op(")") => return Ok(labels),
                Token::Op(",") => {}
                Token::Ident(label) => {
                    labels.insert(label);
                }
                other => return Err(format!("expected a label, found {other:?}")),
            }
        }
    }

    /// The matchers after `{`, up to and including `}`.
    fn matchers(&mut self) -> Result<Vec<(String, &'static str, String)>, String> {
        let mut matchers = Vec::new();
        loop {
            match self.next()? {
                Token::Op("}") => return Ok(matchers),
                Token::Op(",") => {}
                Token::Ident(label) => {
                    let op = match self.next()? {
                        Token::Op(op @ ("=" | "!=" | "=~" | "!~")) => op,
                        other => return Err(format!("expected a matcher, found {other:?}")),
                    };
                    let Token::Str(value) = self.next()? else {
                        return Err(format!("matcher on {label:?} without a string"));
                    };
                    matchers.push((label, op, value));
                }
                other => return Err(format!("unexpected {other:?} among matchers")),
            }
        }
    }

    /// Checks a selector of metric `name` with `matchers`; its labels.
    fn selector(&mut self, name: &str, matchers: &[(String, &'static str, String)]) -> Value {
        let mut labels: BTreeSet<String> = TARGET_LABELS.iter().map(|l| (*l).to_owned()).collect();
        let Some(exposed) = self.exposition.labels(name) else {
            self.problems
                .push(format!("metric {name:?} is not exposed"));
            return Value::Vector(labels);
        };
        labels.extend(exposed.keys().cloned());
        for (label, op, value) in matchers {
            if label == "__name__" || TARGET_LABELS.contains(&label.as_str()) {
                continue;
            }
            let Some(values) = exposed.get(label) else {
                self.problems
                    .push(format!("metric {name:?} has no label {label:?}"));
                continue;
            };
            if *op == "=" && !value.contains('$') && !values.contains(value) {
                self.problems.push(format!(
                    "metric {name:?} has no series with {label}={value:?} (seen: {values:?})"
                ));
            }
        }
        Value::Vector(labels)
    }

    /// An aggregation: `op [by|without (…)] ([parameter,] vector) [by|without (…)]`.
    fn aggregation(&mut self, op: &str) -> Result<Value, String> {
        let mut grouping = self.grouping()?;
        self.expect("(")?;
        if PARAMETER_AGGREGATIONS.contains(&op) {
            self.expression(0)?;
            self.expect(",")?;
        }
        let argument = self.expression(0)?;
        self.expect(")")?;
        if grouping.is_none() {
            grouping = self.grouping()?;
        }
        let Value::Vector(labels) = argument else {
            return Err(format!("{op} of a scalar"));
        };
        for label in grouping.iter().flat_map(|(_, labels)| labels) {
            if !labels.contains(label) {
                self.problems.push(format!(
                    "{op} groups by {label:?}, which its argument's series do not carry (they carry {labels:?})"
                ));
            }
        }
        Ok(Value::Vector(match grouping {
            None => BTreeSet::new(),
            Some((true, by)) => by,
            Some((false, without)) => labels.difference(&without).cloned().collect(),
        }))
    }

    /// An optional `by (…)` (true) or `without (…)` (false).
    fn grouping(&mut self) -> Result<Option<(bool, BTreeSet<String>)>, String> {
        if self.peek_ident("by") || self.peek_ident("without") {
            let by = self.peek_ident("by");
            self.at += 1;
            return Ok(Some((by, self.label_list()?)));
        }
        Ok(None)
    }

    /// A function call; its labels.
    fn function(&mut self, name: &str) -> Result<Value, String> {
        self.expect("(")?;
        let mut arguments = Vec::new();
        if self.peek() != Some(&Token::Op(")")) {
            loop {
                arguments.push(self.expression(0)?);
                match self.next()? {
                    Token::Op(")") => break,
                    Token::Op(",") => {}
                    other => return Err(format!("expected , or ) in {name}(), found {other:?}")),
                }
            }
        } else {
            self.at += 1;
        }
        let first_vector = arguments.iter().find_map(|argument| match argument {
            Value::Vector(labels) => Some(labels.clone()),
            Value::Scalar => None,
        });
        match name {
            "histogram_quantile" => {
                let Some(mut labels) = first_vector else {
                    return Err("histogram_quantile without buckets".to_owned());
                };
                if !labels.remove("le") {
                    self.problems.push(format!(
                        "histogram_quantile over series without `le` (they carry {labels:?})"
                    ));
                }
                Ok(Value::Vector(labels))
            }
            "scalar" | "time" | "pi" => Ok(Value::Scalar),
            "vector" => Ok(Value::Vector(BTreeSet::new())),
            _ if LABEL_KEEPING_FUNCTIONS.contains(&name) => first_vector
                .map(Value::Vector)
                .ok_or_else(|| format!("{name}() without a vector")),
            _ => Err(format!("unknown function {name}()")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scrape written for these tests: a counter family with labels, a
    /// histogram and a gauge, in the OpenMetrics text format.
    const SCRAPE: &str = "\
# HELP shop_orders Orders placed.
# TYPE shop_orders counter
shop_orders_total{state=\"paid\",region=\"eu\"} 3
shop_orders_total{state=\"refunded\",region=\"us\"} 1
# TYPE shop_latency_seconds histogram
shop_latency_seconds_bucket{le=\"0.1\"} 2
shop_latency_seconds_bucket{le=\"+Inf\"} 4
shop_latency_seconds_sum 0.9
shop_latency_seconds_count 4
# TYPE shop_queue gauge
shop_queue 7
# TYPE shop_refusals counter
# EOF
";

    fn exposition() -> Exposition {
        let mut exposition = Exposition::default();
        exposition.add(SCRAPE).unwrap();
        exposition
    }

    /// Sound expressions, Grafana variables included, have no problems.
    #[test]
    fn sound_expressions_pass() {
        let exposition = exposition();
        for expr in [
            "sum by (state) (rate(shop_orders_total{namespace=~\"$namespace\"}[$__rate_interval]))",
            "histogram_quantile(0.99, sum by (le) (rate(shop_latency_seconds_bucket[5m])))",
            "sum(rate(shop_orders_total{state=\"paid\"}[5m])) / sum(rate(shop_orders_total[5m]))",
            "sum by (job, region) (rate(shop_orders_total[5m])) / on (job, region) group_left sum by (job, region) (shop_orders_total)",
            "shop_queue > bool 3",
            "-sum without (region) (shop_orders_total) + 2 ^ 3",
            "sum(rate(shop_refusals_total[5m]))",
            "{__name__=\"shop_queue\", instance=\"x\"}",
            "sum(increase(shop_orders_total[1h] offset 1d)) by (state)",
        ] {
            assert_eq!(check(expr, &exposition), Vec::<String>::new(), "{expr}");
        }
    }

    /// Each kind of mistake is reported: an unknown metric, a label the
    /// metric lacks (in a matcher, `by`, `on`), a value never exposed, a
    /// quantile over series without `le`, a label already aggregated away,
    /// and expressions that do not parse.
    #[test]
    fn mistakes_are_reported() {
        let exposition = exposition();
        for (expr, problem) in [
            (
                "rate(shop_order_total[5m])",
                "\"shop_order_total\" is not exposed",
            ),
            ("shop_orders_total{colour=\"red\"}", "no label \"colour\""),
            ("shop_orders_total{state=\"lost\"}", "state=\"lost\""),
            (
                "sum by (colour) (shop_orders_total)",
                "groups by \"colour\"",
            ),
            (
                "sum by (state) (sum by (region) (shop_orders_total))",
                "groups by \"state\"",
            ),
            (
                "histogram_quantile(0.9, sum by (region) (rate(shop_orders_total[5m])))",
                "without `le`",
            ),
            (
                "histogram_quantile(0.9, rate(shop_latency_seconds[5m]))",
                "\"shop_latency_seconds\" is not exposed",
            ),
            (
                "shop_queue / on (state) shop_orders_total",
                "\"state\" is not on both sides",
            ),
            (
                "sum by (le) (shop_refusals_total{reason=\"x\"})",
                "no label \"reason\"",
            ),
            ("sum(rate(shop_orders_total[5m])", "unexpected end"),
            ("frobnicate(shop_queue)", "unknown function"),
        ] {
            let problems = check(expr, &exposition);
            assert!(
                problems.iter().any(|found| found.contains(problem)),
                "{expr}: expected {problem:?}, got {problems:?}"
            );
        }
    }

    /// Sample lines with escaped quotes and commas in values parse.
    #[test]
    fn escaped_label_values_parse() {
        let (name, labels) = parse_sample(r#"a_total{path="x\"y,z",le="+Inf"} 1"#).unwrap();
        assert_eq!(name, "a_total");
        assert_eq!(
            labels,
            vec![
                ("path".to_owned(), "x\"y,z".to_owned()),
                ("le".to_owned(), "+Inf".to_owned())
            ]
        );
    }
}
