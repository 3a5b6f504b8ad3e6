// The durable workflows app on Azure Functions Flex Consumption (Python), with no storage keys:
// the storage account refuses shared-key access, and the Functions host, the Durable extension and
// the app reach it with a user-assigned managed identity (AzureWebJobsStorage__accountName,
// __credential, __clientId). Application Insights takes telemetry with Microsoft Entra auth only.
// App Service Authentication signs callers in with Microsoft Entra ID (WORKFLOW_AUTH=easyauth).
//
//   az deployment group create -g <group> -f infra/main.bicep -p appName=<name> authClientId=<id>
//
// docs/deploy.md walks through it and lists every app setting with its purpose.

targetScope = 'resourceGroup'

@description('Name of the function app (globally unique: it becomes <appName>.azurewebsites.net).')
@minLength(2)
@maxLength(60)
param appName string

@description('Region of every resource; one where Flex Consumption is offered.')
param location string = resourceGroup().location

@description('Python version of the Functions worker.')
@allowed([
  '3.11'
  '3.12'
])
param pythonVersion string = '3.11'

@description('Client (application) ID of the Microsoft Entra app registration that App Service Authentication validates tokens for.')
param authClientId string

@description('Tenant of that app registration.')
param authTenantId string = tenant().tenantId

@description('Turn away every request without a Microsoft Entra token. Off by default: callers with only a function key (services, the durable webhooks) get through, and the app answers 401 itself on the routes that act for a person (docs/security.md).')
param requireSignIn bool = false

@description('Prefix of the app\'s own table and container names (letters and digits), to share one account between deployments.')
param storagePrefix string = ''

@description('Most instances Flex Consumption may scale out to.')
param maximumInstanceCount int = 100

@description('Memory of each instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

var suffix = uniqueString(resourceGroup().id, appName)
var deploymentContainer = 'app-package-${suffix}'

// Built-in role definitions (learn.microsoft.com, "Azure built-in roles").
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

// -- identity ------------------------------------------------------------------------------------

// One user-assigned identity for the host, the Durable extension and the app: it exists (and
// holds its roles) before the app starts, so the first start already reaches storage.
resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${appName}'
  location: location
}

// -- storage -------------------------------------------------------------------------------------

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'st${suffix}'
  location: location
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    allowSharedKeyAccess: false // no account keys, no SAS signed with them: Microsoft Entra only
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
  }

  resource blobServices 'blobServices' = {
    name: 'default'

    // Flex Consumption runs the app from a package the deployment puts here.
    resource packages 'containers' = {
      name: deploymentContainer
    }
  }
}

// Storage Blob Data Owner: the Functions host (its lease and key blobs, the deployment package),
// the Durable extension (lease blobs, large messages) and the app's own containers (batch inputs
// and reports, archived documents).
resource blobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Queue Data Contributor: the Durable extension's control and work-item queues.
resource queueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Table Data Contributor: the Durable extension's Instances and History tables, and the
// app's own tables (read models, ledgers, the notification outbox).
resource tableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// -- monitoring ----------------------------------------------------------------------------------

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${appName}'
  location: location
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${appName}'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    DisableLocalAuth: true // telemetry only with a Microsoft Entra token
  }
}

// Monitoring Metrics Publisher: the host sends telemetry with the identity's token.
resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(insights.id, identity.id, roles.monitoringMetricsPublisher)
  scope: insights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// -- the function app --------------------------------------------------------------------------

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-${appName}'
  location: location
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true // Linux
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainer}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
  dependsOn: [
    blobDataOwner
    queueDataContributor
    tableDataContributor
    metricsPublisher
  ]
}

// The settings docs/deploy.md names; tests/test_deploy_settings.py checks that the code reads
// each of them and that nothing the code needs is missing.
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: app
  name: 'appsettings'
  properties: {
    AzureWebJobsStorage__accountName: storage.name
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identity.properties.clientId
    APPLICATIONINSIGHTS_CONNECTION_STRING: insights.properties.ConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.properties.clientId};Authorization=AAD'
    WORKFLOW_AUTH: 'easyauth'
    WORKFLOW_STORAGE_PREFIX: storagePrefix
  }
}

// App Service Authentication: Microsoft Entra ID signs people in, and the platform passes who
// they are in the X-MS-CLIENT-PRINCIPAL headers the app reads (WORKFLOW_AUTH=easyauth).
// Requests without a token still reach the app unless requireSignIn: the routes that act for a
// person answer 401 themselves, machine routes need a key.
resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: app
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: requireSignIn
      unauthenticatedClientAction: requireSignIn ? 'Return401' : 'AllowAnonymous'
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: authClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${authTenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            'api://${authClientId}'
            authClientId
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
}

output functionAppName string = app.name
output functionAppUrl string = 'https://${app.properties.defaultHostName}'
output storageAccountName string = storage.name
output identityClientId string = identity.properties.clientId
output identityPrincipalId string = identity.properties.principalId
