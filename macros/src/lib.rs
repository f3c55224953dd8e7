//! `#[sqlreg::test]`: a test that receives a connected registry on a fresh
//! database of its own (see `sqlreg::testing`). Use it through `sqlreg`.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as Tokens;
use quote::{format_ident, quote};
use syn::meta::ParseNestedMeta;
use syn::punctuated::Punctuated;
use syn::{ItemFn, LitStr, Token, parse_macro_input};

/// Runs an `async fn name(db: SqlConnectionRegistry)` test on a fresh
/// database made from the test config (`$SQLREG_TEST_CONFIG`, else
/// `tests/config.yaml`, else SQLite), migrated, loaded with fixtures, and
/// dropped afterwards — also when the test panics.
///
/// Options: `fixtures("users", ..)` (files in `tests/fixtures`),
/// `entities(user::Entity, ..)` (their tables, when there are no
/// migrations), `section = "core_lib.db"`, `config = "tests/pg.yaml"`,
/// `migrations = "migrations"`.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut options = Vec::new();
    let parser = syn::meta::parser(|meta| {
        options.push(option(&meta)?);
        Ok(())
    });
    parse_macro_input!(args with parser);
    let test = parse_macro_input!(item as ItemFn);
    expand(&test, &options)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// One option as a builder call.
fn option(meta: &ParseNestedMeta<'_>) -> syn::Result<Tokens> {
    let key = meta
        .path
        .get_ident()
        .map(ToString::to_string)
        .unwrap_or_default();
    if key == "fixtures" {
        let content;
        syn::parenthesized!(content in meta.input);
        let names = Punctuated::<LitStr, Token![,]>::parse_terminated(&content)?;
        let names = names.iter();
        return Ok(quote!(.fixtures([#(#names),*])));
    }
    if key == "entities" {
        let content;
        syn::parenthesized!(content in meta.input);
        let entities = Punctuated::<syn::Path, Token![,]>::parse_terminated(&content)?;
        let entities = entities.iter();
        return Ok(quote!(#(.entity(#entities))*));
    }
    let method = match key.as_str() {
        "section" => "section",
        "config" => "config_file",
        "migrations" => "migrations",
        _ => {
            return Err(meta.error(
                "unknown option; expected fixtures(\"name\", ..), entities(path::Entity, ..), \
                 section = \"..\", config = \"..\" or migrations = \"..\"",
            ));
        }
    };
    let value: LitStr = meta.value()?.parse()?;
    let method = format_ident!("{method}");
    Ok(quote!(.#method(#value)))
}

fn expand(test: &ItemFn, options: &[Tokens]) -> syn::Result<Tokens> {
    let signature = &test.sig;
    if signature.asyncness.is_none() {
        return Err(syn::Error::new_spanned(
            signature.fn_token,
            "#[sqlreg::test] needs an `async fn`",
        ));
    }
    if signature.inputs.len() != 1 {
        return Err(syn::Error::new_spanned(
            &signature.inputs,
            "#[sqlreg::test] functions take one argument: `db: sqlreg::SqlConnectionRegistry`",
        ));
    }
    let name = &signature.ident;
    let output = &signature.output;
    let attributes = &test.attrs;
    let visibility = &test.vis;
    Ok(quote! {
        #[::core::prelude::v1::test]
        #(#attributes)*
        #visibility fn #name() #output {
            #test
            ::sqlreg::testing::block_on(
                ::sqlreg::testing::TestDatabase::builder()
                    #(#options)*
                    .run(async |db| #name(db).await),
            )
        }
    })
}
