//! The tokio face: the driver owns time, the delegate gets every event.

use std::time::Duration;

use callkit::*;
use tokio::sync::mpsc::UnboundedReceiver;
use uuid::Uuid;

async fn next(events: &mut UnboundedReceiver<ProviderEvent>) -> ProviderEvent {
    tokio::time::timeout(Duration::from_secs(60), events.recv())
        .await
        .expect("an event within 60 s (simulated)")
        .expect("the stream is open")
}

#[tokio::test(start_paused = true)]
async fn an_unresolved_action_times_out_after_ten_seconds() {
    let (services, slot) = CallServices::start(SystemOptions::default());
    let (provider, mut events) = Provider::with_event_stream(slot, ProviderConfiguration::new("T"));
    let uuid = Uuid::new_v4();
    let _proof = provider
        .report_new_incoming_call(uuid, CallUpdate::default())
        .unwrap();
    services
        .call_controller()
        .request_action(CallAction::answer_call(uuid))
        .unwrap();
    let started = tokio::time::Instant::now();
    let ProviderEvent::PerformAnswerCall(handle) = next(&mut events).await else {
        panic!("expected the answer action");
    };
    // Hold the handle without resolving it: the system's timer fires.
    let ProviderEvent::TimedOutPerforming(_, CallAction::AnswerCall(a)) = next(&mut events).await
    else {
        panic!("expected a timeout");
    };
    assert_eq!(a.call_uuid, uuid);
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    assert!(
        services.call_observer().calls().is_empty(),
        "the call failed"
    );
    handle.fulfill(); // late: no effect
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!services.is_audio_active());
    assert!(events.try_recv().is_err());
}

#[tokio::test(start_paused = true)]
async fn fulfilling_from_another_task_activates_audio_and_observers_see_it() {
    let (services, slot) = CallServices::start(SystemOptions::default());
    let (provider, mut events) = Provider::with_event_stream(slot, ProviderConfiguration::new("T"));
    let mut changes = services.call_observer().changes();
    let uuid = Uuid::new_v4();
    let _proof = provider
        .report_new_incoming_call(uuid, CallUpdate::default())
        .unwrap();
    services
        .call_controller()
        .request_action(CallAction::answer_call(uuid))
        .unwrap();
    let ProviderEvent::PerformAnswerCall(handle) = next(&mut events).await else {
        panic!("expected the answer action");
    };
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await; // the 200 OK goes out
        handle.fulfill();
    });
    let ProviderEvent::DidActivateAudioSession(session) = next(&mut events).await else {
        panic!("expected audio activation");
    };
    assert!(session.is_active());
    let ringing = changes.recv().await.unwrap();
    assert!(!ringing.has_connected);
    let answered = changes.recv().await.unwrap();
    assert!(answered.has_connected);

    provider
        .report_call_ended(uuid, CallEndedReason::RemoteEnded)
        .unwrap();
    assert!(matches!(
        next(&mut events).await,
        ProviderEvent::DidDeactivateAudioSession
    ));
    assert!(!session.is_active());
    assert!(changes.recv().await.unwrap().has_ended);
}

#[tokio::test(start_paused = true)]
async fn the_call_screen_turns_taps_into_actions() {
    let (services, slot) = CallServices::start(SystemOptions::default());
    let (provider, mut events) = Provider::with_event_stream(slot, ProviderConfiguration::new("T"));
    services
        .set_call_ui(ScriptedCallUi::new().on_ring(Duration::from_secs(3), RingChoice::Decline));
    let uuid = Uuid::new_v4();
    let _proof = provider
        .report_new_incoming_call(uuid, CallUpdate::default())
        .unwrap();
    let started = tokio::time::Instant::now();
    let ProviderEvent::PerformEndCall(end) = next(&mut events).await else {
        panic!("a decline is an EndCall action");
    };
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert_eq!(end.call_uuid, uuid);
    end.fulfill();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let recents = services.recents();
    assert_eq!(recents.len(), 1);
    assert!(!recents[0].missed, "a declined call is not missed");
}

#[tokio::test(start_paused = true)]
async fn reset_reaches_the_delegate() {
    let (services, slot) = CallServices::start(SystemOptions::default());
    let (provider, mut events) = Provider::with_event_stream(slot, ProviderConfiguration::new("T"));
    let _proof = provider
        .report_new_incoming_call(Uuid::new_v4(), CallUpdate::default())
        .unwrap();
    services.reset();
    assert!(matches!(next(&mut events).await, ProviderEvent::DidReset));
    assert!(services.call_observer().calls().is_empty());
}
