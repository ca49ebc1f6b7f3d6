//! Creating the table, for tests and first deployments without CloudFormation.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};

use super::DynamoStore;
use crate::store::StoreResult;

impl DynamoStore {
    /// Creates the table (on-demand, `pk`/`sk`) and turns on TTL for `expires_at`.
    pub async fn create_table(&self) -> StoreResult<()> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
        };
        let (attrs, keys) = (
            vec![attr("pk")?, attr("sk")?],
            vec![key("pk", KeyType::Hash)?, key("sk", KeyType::Range)?],
        );
        self.send(|t| {
            t.client
                .create_table()
                .table_name(t.name)
                .billing_mode(BillingMode::PayPerRequest)
                .set_attribute_definitions(Some(attrs))
                .set_key_schema(Some(keys))
                .send()
        })
        .await?;
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name("expires_at")
            .enabled(true)
            .build()?;
        self.send(|t| {
            t.client
                .update_time_to_live()
                .table_name(t.name)
                .time_to_live_specification(ttl)
                .send()
        })
        .await?;
        Ok(())
    }
}
