//! Lark flows in flight: one item each, taken by one delete that returns it.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;

use super::DynamoStore;
use super::items::{flow_key, from_item, to_item};
use crate::clock::Timestamp;
use crate::model::LarkFlow;
use crate::store::records::live;
use crate::store::{Flows, StoreResult};

#[async_trait]
impl Flows for DynamoStore {
    async fn put_lark_flow(&self, flow: &LarkFlow) -> StoreResult<()> {
        self.put(to_item(flow_key(&flow.id), flow)?).await
    }

    /// `DeleteItem` with `ALL_OLD`: whoever deletes it gets it, once.
    async fn take_lark_flow(&self, id: &str, now: Timestamp) -> StoreResult<Option<LarkFlow>> {
        let out = self
            .send(|t| {
                t.delete(flow_key(id))
                    .return_values(ReturnValue::AllOld)
                    .send()
            })
            .await?;
        let flow = out
            .attributes
            .filter(|a| !a.is_empty())
            .map(from_item::<LarkFlow>)
            .transpose()?;
        Ok(live(flow, now))
    }
}
