//! `[login] accounts = "users.csv"`: the accounts virtual users log in as, for apps whose
//! accounts are not `user{N}`. Columns `username,password` (a header row first); a password
//! cell may be `${VAR}` / `${VAR:-default}`, read from the environment. Users take the
//! accounts in turn: user N logs in as account (N - 1) mod the number of accounts, with
//! `{username}` and `{password}` in `[login] fields` standing for its cells.

use std::path::Path;

/// One row of the accounts file.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    pub username: String,
    pub password: String,
}

// Never print a password, not even in a debug dump of the scenario.
impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Account({:?}, [REDACTED])", self.username)
    }
}

/// A problem with the accounts file: its 1-based line (None: the whole file) and what.
#[derive(Debug)]
pub struct AccountsError {
    pub line: Option<usize>,
    pub message: String,
}

/// Read and check an accounts file.
pub fn load(path: &Path) -> Result<Vec<Account>, AccountsError> {
    let text = std::fs::read_to_string(path).map_err(|e| AccountsError {
        line: None,
        message: format!("cannot read the accounts file: {e}"),
    })?;
    parse(&text)
}

pub fn parse(text: &str) -> Result<Vec<Account>, AccountsError> {
    let at = |line: usize, message: String| AccountsError {
        line: Some(line),
        message,
    };
    let mut rows = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty());
    let (header_line, header) = rows.next().ok_or(AccountsError {
        line: None,
        message: "the accounts file is empty; it needs a header row `username,password` and one row per account".into(),
    })?;
    let header = cells(header).map_err(|m| at(header_line, m))?;
    let names: Vec<String> = header
        .iter()
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    if names != ["username", "password"] {
        return Err(at(
            header_line,
            format!("the header row must be `username,password`, not {header:?}"),
        ));
    }
    let mut accounts = Vec::new();
    for (line, row) in rows {
        let c = cells(row).map_err(|m| at(line, m))?;
        let [username, password] = <[String; 2]>::try_from(c).map_err(|c| {
            at(
                line,
                format!("expected 2 cells (username,password), found {}", c.len()),
            )
        })?;
        let username = username.trim().to_string();
        if username.is_empty() {
            return Err(at(line, "the username is empty".into()));
        }
        let password = crate::scenario::interpolate_env(&password)
            .map_err(|m| at(line, format!("password: {m}")))?;
        accounts.push(Account { username, password });
    }
    if accounts.is_empty() {
        return Err(at(header_line, "no accounts below the header row".into()));
    }
    Ok(accounts)
}

/// The cells of one CSV row: comma-separated, a cell in double quotes may hold commas and
/// `""` for a quote (RFC 4180, one line per row).
fn cells(row: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cell = String::new();
    let mut chars = row.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') if cell.is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
            }
            (false, ',') => {
                out.push(std::mem::take(&mut cell));
                was_quoted = false;
            }
            (false, c) => cell.push(c),
        }
    }
    if quoted {
        return Err("a quoted cell is not closed".into());
    }
    out.push(cell);
    Ok(out)
}

/// The account of virtual user number `user` (1-based, as `{user}`).
pub fn for_user(accounts: &[Account], user: usize) -> Option<&Account> {
    if accounts.is_empty() {
        return None;
    }
    accounts.get(user.saturating_sub(1) % accounts.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_quotes_and_environment() {
        std::env::set_var("SESSCHECK_ACCOUNTS_TEST_PW", "from-env");
        let a = parse(
            "username,password\nalice,a1\n\n\"bob, jr\",\"p\"\"w,x\"\ncarol,${SESSCHECK_ACCOUNTS_TEST_PW}\r\n",
        )
        .unwrap();
        assert_eq!(a.len(), 3);
        assert_eq!(a[1].username, "bob, jr");
        assert_eq!(a[1].password, "p\"w,x");
        assert_eq!(a[2].password, "from-env");
        // Users take the accounts in turn.
        let names: Vec<&str> = (1..=5)
            .map(|u| for_user(&a, u).unwrap().username.as_str())
            .collect();
        assert_eq!(names, ["alice", "bob, jr", "carol", "alice", "bob, jr"]);
        assert!(!format!("{a:?}").contains("a1"));
    }

    #[test]
    fn mistakes_name_their_line() {
        let e = parse("user,pass\nalice,a\n").unwrap_err();
        assert_eq!(e.line, Some(1));
        let e = parse("username,password\nalice,a\nbob\n").unwrap_err();
        assert_eq!((e.line, e.message.contains("2 cells")), (Some(3), true));
        let e = parse("username,password\nalice,${SESSCHECK_SURELY_UNSET_VAR}\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(
            e.message.contains("SESSCHECK_SURELY_UNSET_VAR"),
            "{}",
            e.message
        );
        assert!(parse("username,password\n")
            .unwrap_err()
            .message
            .contains("no accounts"));
        assert!(parse("").unwrap_err().message.contains("empty"));
        assert_eq!(
            parse("username,password\n\"x,y\n").unwrap_err().line,
            Some(2)
        );
    }
}
