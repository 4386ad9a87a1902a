//! ACL APIs: CreateAcls, DescribeAcls, DeleteAcls. Their wire conversion is
//! [`crate::api_support::acl_wire`]; the authorizer is
//! [`crate::security::acl`].

pub mod create_acls;
pub mod delete_acls;
pub mod describe_acls;
