//! Lark flows in flight: `flow/<id>`, taken (read and deleted) in one transaction.

use async_trait::async_trait;

use super::EmbeddedStore;
use super::items::flow_key;
use crate::clock::Timestamp;
use crate::model::LarkFlow;
use crate::store::records::live;
use crate::store::{Flows, StoreResult};

#[async_trait]
impl Flows for EmbeddedStore {
    async fn put_lark_flow(&self, flow: &LarkFlow) -> StoreResult<()> {
        let flow = flow.clone();
        self.write(move |tx| tx.put(&flow_key(&flow.id), &flow))
            .await
    }

    async fn take_lark_flow(&self, id: &str, now: Timestamp) -> StoreResult<Option<LarkFlow>> {
        let key = flow_key(id);
        self.write(move |tx| {
            let flow = tx.get::<LarkFlow>(&key)?;
            if flow.is_some() {
                tx.delete(&key)?;
            }
            Ok(live(flow, now))
        })
        .await
    }
}
