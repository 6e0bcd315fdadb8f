//! `callkit-voip user add|del|list`: the accounts the server authenticates.
//! Only digest hashes (HA1, MD5 and SHA-256) of the password are stored.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use server::store::{RedisStore, SqliteStore, Store, User};

const EXAMPLES: &str = "\
Examples:
  callkit-voip user add alice --password wonderland
  callkit-voip user add bob --password builder --db /var/lib/callkit/callkit-voip.db
  callkit-voip user list
  callkit-voip user del alice

The realm must be the server's (`realm` in its config, default callkit-voip):
the stored hashes cover it, so changing the realm means setting passwords again.";

#[derive(Debug, clap::Subcommand)]
#[command(after_help = EXAMPLES)]
pub enum UserCommand {
    /// Add a user who may register and call.
    #[command(after_help = EXAMPLES)]
    Add {
        name: String,
        /// The password (only its digest hashes are stored).
        #[arg(long, env = "CALLKIT_USER_PASSWORD")]
        password: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Delete a user and their registrations.
    #[command(after_help = EXAMPLES)]
    Del {
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List the users.
    #[command(after_help = EXAMPLES)]
    List {
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, clap::Args)]
pub struct DbArgs {
    /// The server's database.
    #[arg(long, env = "CALLKIT_DB", default_value = "./callkit-voip.db")]
    db: PathBuf,
    /// The server's Redis instead of the database (`redis://127.0.0.1:6379/0`).
    #[arg(long, env = "CALLKIT_REDIS", value_name = "URL")]
    redis: Option<String>,
    /// The digest realm the password hashes are computed for.
    #[arg(long, default_value = server::config::DEFAULT_REALM)]
    realm: String,
}

impl DbArgs {
    fn open(&self) -> anyhow::Result<Box<dyn Store>> {
        if let Some(url) = &self.redis {
            let store = RedisStore::open(url).with_context(|| format!("cannot reach {url}"))?;
            return Ok(Box::new(store));
        }
        let store = SqliteStore::open(&self.db)
            .with_context(|| format!("cannot open the database {}", self.db.display()))?;
        Ok(Box::new(store))
    }
}

pub fn run(cmd: UserCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        UserCommand::Add { name, password, db } => {
            let user = User::with_password(&name, &db.realm, &password)?;
            db.open()?.add_user(&user)?;
            println!("added {name} (realm {})", db.realm);
        }
        UserCommand::Del { name, db } => {
            db.open()?.delete_user(&name)?;
            println!("deleted {name}");
        }
        UserCommand::List { db } => {
            for user in db.open()?.users()? {
                println!("{:<24} realm {}", user.name, user.realm);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
