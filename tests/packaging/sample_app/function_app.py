import azure.durable_functions as df
import azure.functions as func
from approval_blueprint import bp

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(bp)
