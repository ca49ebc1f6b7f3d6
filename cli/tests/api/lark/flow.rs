//! Linking, signing in, and every way a callback is refused.

use serde_json::json;
use shared::lark::FLOW_TTL;
use shared::store::UserChange;

use super::standin::{CONSOLE, Call, LarkStandIn, person};
use super::{
    ADA_LARK, EVE_LARK, LINK, SIGN_IN, ada_linked, callback_path, failed, identity, location,
    public_fields, round, succeeded, to_lark, with_lark,
};
use crate::support::{PASSWORD, TestApp, mails_to};

#[tokio::test]
async fn linking_keeps_the_public_fields_and_never_a_token() {
    let (app, lark, ada) = ada_linked().await;
    let ada_lark = person(ADA_LARK, "Ada");
    assert_eq!(app.user(&ada.id).await.lark, Some(identity(&ada_lark)));
    let r = app.get("/user").await;
    r.expect(200);
    assert_eq!(r.body["lark"], public_fields(&ada_lark));
    let tokens = lark.tokens();
    assert_eq!(tokens.len(), 1);
    let stored = format!("{:?}", app.user(&ada.id).await);
    for token in &tokens {
        assert!(!r.text.contains(token) && !stored.contains(token));
    }
    for unverified in ["unverified@example.com", "+8613800000000"] {
        assert!(!r.text.contains(unverified) && !stored.contains(unverified));
    }
    assert_eq!(lark.calls(Call::Token), 1);
    assert_eq!(lark.calls(Call::UserInfo), 1);
    // The flow's cookie is spent; the session is the same one.
    assert_eq!(app.cookie("LARK_STATE"), None);
    app.get("/verify").await.expect(204);
}

#[tokio::test]
async fn a_linked_lark_account_signs_in_like_the_other_methods() {
    let (app, lark, ada) = ada_linked().await;
    app.advance(600);
    let phone = app.browser_at("198.51.100.23");
    let r = round(&phone, &lark, SIGN_IN).await;
    succeeded(&r);
    let token = r.set_cookie("TOKEN").expect("a session");
    assert!(token.contains("HttpOnly"), "{token}");
    assert!(r.set_cookie("DEVICE").is_some(), "a device cookie");
    let r = phone.get("/user").await;
    r.expect(200);
    assert_eq!(r.body["email"], "ada@example.com");
    assert_eq!(r.body["sessions"], 2);
    assert_eq!(
        r.body["history"]["metadata"],
        json!({ "client_ip": "198.51.100.23", "source": "lark" })
    );
    let sessions = phone.get("/user/sessions").await;
    let methods: Vec<&str> = sessions.body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["method"].as_str())
        .collect();
    assert!(methods.contains(&"lark"), "{}", sessions.text);
    // The account stays linked; the sign-in did not touch it.
    assert_eq!(
        app.user(&ada.id).await.lark,
        Some(identity(&person(ADA_LARK, "Ada")))
    );
}

#[tokio::test]
async fn a_callback_without_this_browsers_live_state_never_reaches_lark() {
    let (app, lark, _) = ada_linked().await;
    let calls = || lark.calls(Call::Token) + lark.calls(Call::UserInfo);
    let before = calls();

    // Missing: no state at all, or no cookie.
    let victim = app.new_browser();
    let at = to_lark(&victim, &lark, SIGN_IN).await;
    let back = callback_path(&lark.approve(&at));
    let without_state = back.split("&state=").next().unwrap().to_string();
    failed(&victim.get(&without_state).await, "LARK_STATE_INVALID");
    let stranger = app.new_browser();
    failed(&stranger.get(&back).await, "LARK_STATE_INVALID");

    // Forged: login CSRF, the attacker's own callback opened in the victim's
    // browser (which has a flow of its own); or a nonce the attacker made up
    // and planted in both places.
    let attacker = app.new_browser();
    let theirs = callback_path(&lark.approve(&to_lark(&attacker, &lark, SIGN_IN).await));
    to_lark(&victim, &lark, SIGN_IN).await;
    failed(&victim.get(&theirs).await, "LARK_STATE_INVALID");
    assert_eq!(victim.cookie("TOKEN"), None);
    let made_up = "A".repeat(43);
    victim.set_cookie("LARK_STATE", &made_up);
    let forged = format!("/lark?code=stand-in-code-1&state={made_up}");
    failed(&victim.get(&forged).await, "LARK_STATE_INVALID");
    assert_eq!(calls(), before, "Lark was never asked");

    // Expired: Lark takes longer than the flow lives.
    let slow = app.new_browser();
    let at = to_lark(&slow, &lark, SIGN_IN).await;
    app.advance(FLOW_TTL + 1);
    let back = callback_path(&lark.approve(&at));
    failed(&slow.get(&back).await, "LARK_STATE_INVALID");
    assert_eq!(calls(), before, "Lark was never asked");
    assert_eq!(slow.cookie("TOKEN"), None);

    // Reused: a callback that signed in once is refused the second time, even
    // with its cookie put back.
    let once = app.new_browser();
    let at = to_lark(&once, &lark, SIGN_IN).await;
    let nonce = once.cookie("LARK_STATE").unwrap();
    let back = callback_path(&lark.approve(&at));
    succeeded(&once.get(&back).await);
    let after_one = calls();
    once.set_cookie("LARK_STATE", &nonce);
    failed(&once.get(&back).await, "LARK_STATE_INVALID");
    assert_eq!(calls(), after_one);
}

#[tokio::test]
async fn declining_at_lark_is_a_failure_with_its_own_code() {
    let (app, lark) = with_lark().await;
    let at = to_lark(&app, &lark, SIGN_IN).await;
    let state = app.cookie("LARK_STATE").unwrap();
    let r = app
        .get(&format!("/lark?error=access_denied&state={state}"))
        .await;
    failed(&r, "LARK_DENIED");
    assert_eq!(lark.calls(Call::Token), 0);
    // The flow is spent: the code Lark would have sent is of no use now.
    let back = callback_path(&lark.approve(&at));
    app.set_cookie("LARK_STATE", &state);
    failed(&app.get(&back).await, "LARK_STATE_INVALID");
}

#[tokio::test]
async fn a_lark_identity_belongs_to_one_account() {
    let (app, lark, ada) = ada_linked().await;
    app.add_user("bob@example.com").await;
    let bob = app.signed_in_as("bob@example.com").await;
    failed(&round(&bob, &lark, LINK).await, "LARK_TAKEN");
    let bob_user = app.state.store.user_by_email("bob@example.com").await;
    assert!(bob_user.unwrap().unwrap().lark.is_none());
    // It still signs in to Ada's account.
    let b = app.new_browser();
    succeeded(&round(&b, &lark, SIGN_IN).await);
    assert_eq!(b.get("/user").await.body["email"], "ada@example.com");
    // Ada linking another Lark account frees the first.
    lark.person(person(EVE_LARK, "Eve"));
    succeeded(&round(&app, &lark, LINK).await);
    assert_eq!(app.user(&ada.id).await.lark.unwrap().open_id, EVE_LARK);
    lark.person(person(ADA_LARK, "Ada"));
    succeeded(&round(&bob, &lark, LINK).await);
}

#[tokio::test]
async fn unlinking_frees_the_identity_and_ends_its_sign_in() {
    let (app, lark, ada) = ada_linked().await;
    app.delete("/user/lark").await.expect(204);
    assert_eq!(app.user(&ada.id).await.lark, None);
    let b = app.new_browser();
    failed(&round(&b, &lark, SIGN_IN).await, "LARK_NOT_LINKED");
    assert_eq!(b.cookie("TOKEN"), None);
    // Its guard went with it: another account may link it now.
    app.add_user("bob@example.com").await;
    let bob = app.signed_in_as("bob@example.com").await;
    succeeded(&round(&bob, &lark, LINK).await);
    succeeded(&round(&b, &lark, SIGN_IN).await);
    assert_eq!(b.get("/user").await.body["email"], "bob@example.com");
}

#[tokio::test]
async fn an_unlinked_identity_or_a_disabled_account_cannot_sign_in() {
    let (app, lark, ada) = ada_linked().await;
    lark.person(person(EVE_LARK, "Eve"));
    let b = app.new_browser();
    failed(&round(&b, &lark, SIGN_IN).await, "LARK_NOT_LINKED");
    lark.person(person(ADA_LARK, "Ada"));
    app.change_user(&ada.id, UserChange::Active(false)).await;
    failed(&round(&b, &lark, SIGN_IN).await, "ACCOUNT_DISABLED");
    assert_eq!(b.cookie("TOKEN"), None);
}

/// As with a password, from a browser that signed in before (its device
/// cookie keeps the account-wide cap for strangers out of the way).
#[tokio::test]
async fn lark_sign_in_keeps_to_the_accounts_guessing_limits() {
    let (app, lark, _) = ada_linked().await;
    app.post("/logout", json!({})).await.expect(204);
    for _ in 0..5 {
        app.login("ada@example.com", "not the password")
            .await
            .expect_error(400, "AUTH_INCORRECT", "incorrect");
    }
    let r = round(&app, &lark, SIGN_IN).await;
    assert_eq!(
        location(&r),
        format!("{CONSOLE}unauthorize?error=AUTH_MANY_INCORRECT&retry_after=1")
    );
    assert_eq!(app.cookie("TOKEN"), None);
    // Once the back-off has passed, Lark signs in.
    app.advance(1);
    succeeded(&round(&app, &lark, SIGN_IN).await);
    app.get("/verify").await.expect(204);
}

#[tokio::test]
async fn linking_needs_the_session_that_began_it() {
    let (app, lark) = with_lark().await;
    let ada = app.add_user("ada@example.com").await;
    // No session: refused before Lark.
    app.ping().await;
    let r = app.get(&super::authorize_path(LINK)).await;
    failed(&r, "UNAUTHENTICATED");
    assert_eq!(r.set_cookie("LARK_STATE"), None);
    // The session ends while the person is at Lark.
    app.sign_in("ada@example.com", PASSWORD).await;
    let at = to_lark(&app, &lark, LINK).await;
    let other = app.signed_in_as("ada@example.com").await;
    other.delete("/user/sessions").await.expect(200);
    let back = callback_path(&lark.approve(&at));
    failed(&app.get(&back).await, "SESSION_ENDED");
    assert_eq!(app.user(&ada.id).await.lark, None);
}

/// Lark refusing, failing or not answering, at either call: the failure
/// route with a code that says which, and nothing stored.
#[tokio::test]
async fn lark_failing_or_silent_stores_nothing() {
    let (app, lark) = with_lark().await;
    let ada = app.add_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let refused = json!({ "code": 20003, "error": "invalid_grant", "error_description": "The authorization code is not found." });
    let broken = json!({ "code": 20050, "error": "server_error", "error_description": "An unexpected server error occurred." });
    let bad_token = json!({ "code": 20005, "msg": "The user access token passed is invalid. Please check the value" });
    let cases = [
        (Call::Token, Some((400, refused)), "LARK_REFUSED"),
        (Call::Token, Some((500, broken.clone())), "LARK_UNAVAILABLE"),
        (
            Call::Token,
            Some((502, json!("Bad Gateway"))),
            "LARK_UNAVAILABLE",
        ),
        (Call::Token, None, "LARK_UNAVAILABLE"),
        (Call::UserInfo, Some((200, bad_token)), "LARK_REFUSED"),
        (Call::UserInfo, Some((500, broken)), "LARK_UNAVAILABLE"),
        (Call::UserInfo, None, "LARK_UNAVAILABLE"),
    ];
    let signed_in = app.get("/user").await.body["sessions"].clone();
    for (call, fault, code) in cases {
        match fault {
            Some((status, body)) => lark.fail(call, status, body),
            None => lark.stall(call),
        }
        let r = round(&app, &lark, LINK).await;
        failed(&r, code);
        assert_eq!(app.user(&ada.id).await.lark, None, "{call:?} {code}");
        let b = app.new_browser();
        failed(&round(&b, &lark, SIGN_IN).await, code);
        assert_eq!(b.cookie("TOKEN"), None);
        lark.heal();
    }
    assert_eq!(app.get("/user").await.body["sessions"], signed_in);
    // And once Lark is back, the same browser links.
    succeeded(&round(&app, &lark, LINK).await);
}

#[tokio::test]
async fn the_state_cookie_is_bound_to_the_flow_it_began() {
    let (app, lark): (TestApp, LarkStandIn) = with_lark().await;
    // Two tabs of one browser: the later flow's cookie wins, the earlier
    // flow's callback is refused, and leaves the later one be.
    let first = to_lark(&app, &lark, SIGN_IN).await;
    let second = to_lark(&app, &lark, SIGN_IN).await;
    let back = callback_path(&lark.approve(&first));
    let r = app.get(&back).await;
    failed(&r, "LARK_STATE_INVALID");
    assert_eq!(r.set_cookie("LARK_STATE"), None);
    let r = app.get(&callback_path(&lark.approve(&second))).await;
    // Nobody is linked to Ada's Lark account here; the state itself passed.
    failed(&r, "LARK_NOT_LINKED");
    assert!(location(&r).ends_with("LARK_NOT_LINKED"));
}

/// One callback sent from four tabs at once: the flow is taken once, so
/// one signs in, the others are refused, and Lark is asked once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_callback_raced_from_many_tabs_signs_in_once() {
    let (app, lark, _) = ada_linked().await;
    let b = app.new_browser();
    let back = callback_path(&lark.approve(&to_lark(&b, &lark, SIGN_IN).await));
    let before = lark.calls(Call::Token);
    let answers = b
        .race_tabs(4, |tab| {
            let back = back.clone();
            async move { location(&tab.get(&back).await) }
        })
        .await;
    let won = answers.iter().filter(|l| l.ends_with("authorized")).count();
    let refused = answers
        .iter()
        .filter(|l| l.ends_with("error=LARK_STATE_INVALID"))
        .count();
    assert_eq!((won, refused), (1, 3), "{answers:?}");
    assert_eq!(lark.calls(Call::Token), before + 1);
}

/// Two accounts linking one Lark identity at the same moment: the guard's
/// conditional write lets one have it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_accounts_racing_to_link_one_identity_get_it_once() {
    let (app, lark) = with_lark().await;
    let ada = app.add_user("ada@example.com").await;
    let bob = app.add_user("bob@example.com").await;
    let (ada_b, bob_b) = (
        app.signed_in_as("ada@example.com").await,
        app.signed_in_as("bob@example.com").await,
    );
    let ada_back = callback_path(&lark.approve(&to_lark(&ada_b, &lark, LINK).await));
    let bob_back = callback_path(&lark.approve(&to_lark(&bob_b, &lark, LINK).await));
    let (a, b) = tokio::join!(
        tokio::spawn(async move { location(&ada_b.get(&ada_back).await) }),
        tokio::spawn(async move { location(&bob_b.get(&bob_back).await) }),
    );
    let mut answers = [a.unwrap(), b.unwrap()];
    answers.sort();
    assert_eq!(
        answers,
        [
            format!("{CONSOLE}authorized"),
            format!("{CONSOLE}unauthorize?error=LARK_TAKEN")
        ]
    );
    let owner = app.state.store.user_id_by_lark(ADA_LARK).await.unwrap();
    let holders: Vec<String> = [&ada.id, &bob.id]
        .into_iter()
        .filter(|id| owner.as_ref() == Some(*id))
        .cloned()
        .collect();
    assert_eq!(holders.len(), 1);
    let (ada, bob) = (app.user(&ada.id).await, app.user(&bob.id).await);
    assert_eq!(
        [ada.lark.is_some(), bob.lark.is_some()],
        [owner == Some(ada.id.clone()), owner == Some(bob.id.clone())]
    );
}

/// The store failing (AWS backend only: its connection is cut) is a
/// failure redirect too, never a 500 or a page; nothing is half-done.
#[tokio::test]
async fn a_store_outage_is_a_failure_redirect() {
    let (app, lark, _) = ada_linked().await;
    let Some(aws) = app.aws.clone() else {
        eprintln!("this test cuts the AWS backend (PLANX_TEST_BACKEND=aws)");
        return;
    };
    let b = app.new_browser();
    let back = callback_path(&lark.approve(&to_lark(&b, &lark, SIGN_IN).await));
    aws.database.down();
    failed(&b.get(&back).await, "SERVICE_UNAVAILABLE");
    let r = b.get(&super::authorize_path(SIGN_IN)).await;
    failed(&r, "SERVICE_UNAVAILABLE");
    assert_eq!(r.set_cookie("LARK_STATE"), None);
    aws.database.up();
    assert_eq!(b.cookie("TOKEN"), None);
    succeeded(&round(&b, &lark, SIGN_IN).await);
}

/// Linking is a sensitive change (step-up): a session older than
/// `REAUTH_WINDOW` is refused before Lark, with `REAUTHENTICATE`, and links
/// once `POST /user/reauthenticate` has made it recent again.
#[tokio::test]
async fn a_stale_session_must_reauthenticate_to_link() {
    let (app, lark) = with_lark().await;
    let ada = app.add_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    app.advance(601);
    let r = app.get(&super::authorize_path(LINK)).await;
    failed(&r, "REAUTHENTICATE");
    assert_eq!(r.set_cookie("LARK_STATE"), None, "no flow begun");
    assert_eq!(lark.calls(Call::Token), 0);
    assert_eq!(app.user(&ada.id).await.lark, None);
    app.post("/user/reauthenticate", json!({ "password": PASSWORD }))
        .await
        .expect(204);
    succeeded(&round(&app, &lark, LINK).await);
    assert!(app.user(&ada.id).await.lark.is_some());
}

/// The owner hears of a link, and of a Lark sign-in from a new device, as
/// of every other; the notices name no secret.
#[tokio::test]
async fn a_link_and_a_new_devices_lark_sign_in_are_noticed() {
    let (app, lark, _) = ada_linked().await;
    let mails = mails_to(&app, "ada@example.com");
    let (subject, _) = mails.last().expect("a notice of the link");
    assert!(subject.contains("linked to a Lark account"), "{subject}");
    let before = mails.len();
    let b = app.browser_at("198.51.100.23");
    succeeded(&round(&b, &lark, SIGN_IN).await);
    let mails = mails_to(&app, "ada@example.com");
    assert_eq!(mails.len(), before + 1, "{mails:?}");
    let (subject, text) = mails.last().unwrap();
    assert!(subject.contains("New sign-in"), "{subject}");
    assert!(
        text.contains("198.51.100.23") && text.contains("Lark"),
        "{text}"
    );
    for token in lark.tokens() {
        assert!(!text.contains(&token));
    }
}

/// A password change while the person is at Lark ends the session that
/// began the link (issue 12's credential version): nothing is linked.
#[tokio::test]
async fn a_password_change_meanwhile_ends_the_link() {
    let (app, lark) = with_lark().await;
    let ada = app.add_user("ada@example.com").await;
    app.sign_in("ada@example.com", PASSWORD).await;
    let at = to_lark(&app, &lark, LINK).await;
    let other = app.signed_in_as("ada@example.com").await;
    other
        .post(
            "/user/password",
            json!({ "old": PASSWORD, "password": "a brand new passphrase" }),
        )
        .await
        .expect(204);
    failed(
        &app.get(&callback_path(&lark.approve(&at))).await,
        "SESSION_ENDED",
    );
    assert_eq!(app.user(&ada.id).await.lark, None);
}
