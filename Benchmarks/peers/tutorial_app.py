# The app of the Flask + PyJWT tutorial (../shared/TUTORIAL.txt), steps 2 to 4
# put together as they stand, for `make bench` to measure Gatehouse against
# (run under gunicorn, one worker). Nothing is fixed here: it stores passwords
# in plain text in a dict and answers 403 for a missing token, exactly as the
# tutorial does. Do not deploy it.
import datetime
from functools import wraps

import jwt
from flask import Flask, jsonify, request
from flask_cors import CORS

app = Flask(__name__)
CORS(app)

# Secret key for encoding and decoding the JWT
app.config['SECRET_KEY'] = 'your_secret_key_here'


@app.route('/')
def home():
    return "Welcome to the Flask API!"


# Dummy user data
users = {"testuser": "password123"}


def token_required(f):
    @wraps(f)
    def decorated(*args, **kwargs):
        token = request.headers.get('Authorization')
        if not token:
            return jsonify({'message': 'Token is missing!'}), 403
        try:
            data = jwt.decode(token, app.config['SECRET_KEY'], algorithms=["HS256"])
        except:  # noqa: E722 (the tutorial's own bare except)
            return jsonify({'message': 'Token is invalid!'}), 403
        return f(*args, **kwargs)
    return decorated


@app.route('/register', methods=['POST'])
def register():
    username = request.json.get('username')
    password = request.json.get('password')
    users[username] = password
    return jsonify({'message': 'User registered successfully!'}), 201


@app.route('/login', methods=['POST'])
def login():
    auth = request.json
    username = auth.get('username')
    password = auth.get('password')

    if users.get(username) == password:
        token = jwt.encode({
            'user': username,
            'exp': datetime.datetime.utcnow() + datetime.timedelta(hours=1)
        }, app.config['SECRET_KEY'], algorithm="HS256")
        return jsonify({'token': token})

    return jsonify({'message': 'Invalid credentials!'}), 401


@app.route('/protected', methods=['GET'])
@token_required
def protected():
    return jsonify({'message': 'This is a protected route!'})


if __name__ == '__main__':
    app.run(debug=True)
