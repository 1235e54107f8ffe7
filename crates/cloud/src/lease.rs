//! Holding a queue message while its job runs: visibility extended in the background, then completed, released or given up.

use crate::{store::JobQueue, Error, ReceivedMessage, Result};
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};
use tokio::{sync::Mutex, task::JoinHandle, time::Instant};

/// A received message whose visibility timeout is renewed every third of
/// `visibility` until the job ends, so a long job is not redelivered to
/// another worker while this one still works on it, and a worker that dies
/// stops renewing and its job reappears after at most `visibility`.
///
/// End it with [`complete`](Self::complete) (after the done marker is
/// written), [`release`](Self::release) (give the job back at once, e.g. on
/// SIGTERM) or [`into_message`](Self::into_message) (e.g. to dead-letter it).
/// Dropping it stops the renewals and the message reappears when its current
/// timeout runs out.
#[derive(Debug)]
pub struct MessageLease {
    queue: Arc<dyn JobQueue>,
    message: Arc<Mutex<ReceivedMessage>>,
    lost: Arc<AtomicBool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    id: String,
    dequeue_count: u32,
}

impl MessageLease {
    /// Starts renewing `message` (just received from `queue` with `visibility`).
    /// Must be called inside a tokio runtime.
    pub fn start(
        queue: Arc<dyn JobQueue>,
        message: ReceivedMessage,
        visibility: Duration,
    ) -> MessageLease {
        let id = message.id.clone();
        let dequeue_count = message.dequeue_count;
        let message = Arc::new(Mutex::new(message));
        let lost = Arc::new(AtomicBool::new(false));
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let period = (visibility / 3).max(Duration::from_millis(300));
        let task = tokio::spawn({
            let (queue, message, lost) = (queue.clone(), message.clone(), lost.clone());
            async move {
                // Until when no other worker can have received the message.
                let mut hidden_until = Instant::now() + visibility;
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => return,
                        () = tokio::time::sleep(period) => {}
                    }
                    let mut m = message.lock().await;
                    let attempt = Instant::now();
                    match queue.set_visibility(&mut m, visibility).await {
                        Ok(()) => hidden_until = attempt + visibility,
                        // While the message is still hidden nobody else can hold it: the
                        // receipt was spent by an earlier attempt that took effect (its reply
                        // lost, the SDK's retry then refused), or the message was deleted. The
                        // job is still this worker's to finish, only no longer renewable.
                        Err(Error::LeaseLost { .. }) if Instant::now() < hidden_until => return,
                        Err(Error::LeaseLost { .. }) => {
                            lost.store(true, Ordering::SeqCst);
                            return;
                        }
                        // A transient failure: the next tick tries again, well
                        // before the current timeout (three periods) runs out.
                        Err(_) => {}
                    }
                }
            }
        });
        MessageLease {
            queue,
            message,
            lost,
            stop: Some(stop_tx),
            task: Some(task),
            id,
            dequeue_count,
        }
    }

    /// The queue's id for the message.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// How many times the message had been delivered when it was received.
    pub fn dequeue_count(&self) -> u32 {
        self.dequeue_count
    }

    /// Whether a renewal found the message taken over (its timeout ran out
    /// and it went to another worker): this worker should stop the job.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    async fn stop_renewing(&mut self) -> ReceivedMessage {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            // Waiting for the task means any renewal in flight has finished and
            // stored its new pop receipt before we use it.
            let _ = task.await;
        }
        self.message.lock().await.clone()
    }

    /// Deletes the message: the job is done (its done marker already written).
    pub async fn complete(mut self) -> Result<()> {
        let message = self.stop_renewing().await;
        self.queue.delete(&message).await
    }

    /// Makes the message visible again at once, so another worker takes the job.
    pub async fn release(mut self) -> Result<()> {
        let mut message = self.stop_renewing().await;
        self.queue
            .set_visibility(&mut message, Duration::ZERO)
            .await
    }

    /// Stops renewing and hands back the message with its current pop receipt.
    pub async fn into_message(mut self) -> ReceivedMessage {
        self.stop_renewing().await
    }
}

impl Drop for MessageLease {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
